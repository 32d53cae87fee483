"""A 500 MB upload through the console's Files page to the sandbox, against the same upload sent
straight to the sandbox in the same run.

Starts its own console (gunicorn gthread, as `serve` runs it, on a free port with a temporary data
dir; the console's and the sandbox's video limits raised above the file size). The file is made on
the fly (an MP4 signature, then zeros), so the bench process holds none of it. The console's
resident memory (every process of the server) is sampled during the relay. Like the Files
page's script, the bench states the file's size in the URL, so the console relays the body to
the API while it arrives.

Targets: console memory growth < 64 MB; relay throughput >= 70 % of the direct upload.

    python bench/upload.py [--megabytes 500] [--rounds 2]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from local_server import free_port, wait_until_up
from requests_toolbelt.multipart.encoder import MultipartEncoder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_GROWTH_MB = 64
TARGET_RATIO = 0.70
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
PASSWORD = "bench-password-123456"  # noqa: S105 - a throwaway member in a temporary data dir


class ZeroFile:
    """`size` bytes made on demand: the MP4 head, then zeros. `len` is what is left to read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0

    @property
    def len(self) -> int:
        return self.size - self.position

    def read(self, amount: int = -1) -> bytes:
        amount = self.len if amount is None or amount < 0 else min(amount, self.len)
        start = self.position
        self.position += amount
        head = MP4_HEAD[start : start + amount]
        return head + bytes(amount - len(head))


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (gunicorn master and workers)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
        pending.extend(int(child) for child in children)
    return total


def serve(address: str, megabytes: int) -> None:
    """The bench's server: gunicorn gthread with both video limits raised to `megabytes`."""
    import django
    from gunicorn.app.base import BaseApplication

    django.setup()
    from rivya_dashboard.console import files
    from rivya_dashboard.sandbox import choices

    choices.FILE_LIMITS["video"]["max_bytes"] = megabytes * 1024 * 1024
    files.DEFAULT_LIMITS["video"] = megabytes * 1024 * 1024
    from rivya_dashboard.wsgi import application

    class Server(BaseApplication):
        def load_config(self) -> None:
            for name, value in {
                "bind": address,
                "workers": 2,
                "threads": 8,
                "worker_class": "gthread",
                "timeout": 600,
                "loglevel": "warning",
            }.items():
                self.cfg.set(name, value)

        def load(self):  # gunicorn's hook: the application to serve
            return application

    Server().run()


def prepare(env: dict) -> str:
    """Migrate, collect static, create the owner and a sandbox key in the vault; returns it."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        subprocess.run([*manage, *command], env=env, check=True, capture_output=True)
    raw = (
        subprocess.run(
            [*manage, "sandbox_key", "--credits", "1000"], env=env, check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
        .splitlines()[-1]
    )
    os.environ.update(env)
    import django

    django.setup()
    from rivya_dashboard.accounts.models import Role, User
    from rivya_dashboard.vault.models import ApiKey

    owner = User.objects.create_user("owner", "owner@example.test", PASSWORD, role=Role.OWNER)
    key = ApiKey.objects.create(
        label="Sandbox", environment="sandbox", base_url=env["BENCH_API"], added_by=owner
    )
    key.store_secret(raw)
    key.save()
    return raw


def sign_in(origin: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{origin}/accounts/login/").raise_for_status()
    token = session.cookies["csrftoken"]
    answer = session.post(
        f"{origin}/accounts/login/",
        data={"username": "owner", "password": PASSWORD, "csrfmiddlewaretoken": token},
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"sign-in failed: HTTP {answer.status_code}")
    return session


def direct_upload(api: str, raw_key: str, size: int) -> float:
    from rivya_dashboard.rivya.client import RivyaClient

    client = RivyaClient(api, raw_key, session=requests.Session(), timeout=(3.05, 600.0))
    start = time.perf_counter()
    answer = client.upload_file(ZeroFile(size), kind="video", filename="direct.mp4")
    seconds = time.perf_counter() - start
    assert answer["size_bytes"] == size, answer
    return seconds


def console_upload(origin: str, session: requests.Session, size: int, server_pid: int) -> tuple:
    from rivya_dashboard.vault.models import ApiKey

    fields = [
        ("key", str(ApiKey.objects.get().pk)),
        ("kind", "video"),
        ("upload", ("relayed.mp4", ZeroFile(size), "video/mp4")),
    ]
    body = MultipartEncoder(fields)
    baseline = tree_rss_mb(server_pid)
    peak = {"rss": baseline}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak["rss"] = max(peak["rss"], tree_rss_mb(server_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    answer = session.post(
        f"{origin}/files/upload/?kind=video&key={fields[0][1]}&size={size}",
        data=body,
        headers={
            "Content-Type": body.content_type,
            "X-CSRFToken": session.cookies["csrftoken"],
            "Referer": f"{origin}/files/",
        },
        allow_redirects=False,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if answer.status_code != 302:
        raise SystemExit(f"the console refused the upload: HTTP {answer.status_code}")
    return seconds, peak["rss"] - baseline, baseline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="uploads per path, alternating")
    parser.add_argument("--serve", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    if args.serve:
        serve(args.serve, args.megabytes + 1)
        return 0
    size = args.megabytes * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="rivya-bench-upload-") as data_dir:
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "RIVYA_DATA_DIR": data_dir,
            "RIVYA_SANDBOX_RATE_LIMIT": "1000000",
            "RIVYA_UPLOAD_MAX_MB": str(args.megabytes + 1),
            "RIVYA_LOG_LEVEL": "WARNING",
            "RIVYA_MFA_REQUIRED": "0",
            "BENCH_API": f"{origin}/sandbox/api/v1",
            "TMPDIR": data_dir,
        }
        raw_key = prepare(env)
        command = [sys.executable, __file__, "--megabytes", str(args.megabytes)]
        server = subprocess.Popen([*command, "--serve", f"127.0.0.1:{port}"], env=env)
        try:
            wait_until_up(origin, server, seconds=60)
            session = sign_in(origin)
            direct, relayed, growth = 0.0, 0.0, 0.0
            # Alternate the two paths so a burst of load on the shared machine hits both alike.
            for _round in range(args.rounds):
                direct += direct_upload(env["BENCH_API"], raw_key, size)
                seconds, round_growth, baseline = console_upload(origin, session, size, server.pid)
                relayed += seconds
                growth = max(growth, round_growth)
        finally:
            server.terminate()
            server.wait(timeout=20)
    ratio = direct / relayed
    total = args.megabytes * args.rounds
    print(f"direct to the sandbox: {total / direct:.0f} MB/s ({direct:.1f} s for {total} MB)")
    print(f"through the console:   {total / relayed:.0f} MB/s ({relayed:.1f} s for {total} MB)")
    print(f"console memory: baseline {baseline:.0f} MB, growth {growth:+.1f} MB")
    missed = growth >= TARGET_GROWTH_MB or ratio < TARGET_RATIO
    print(
        f"summary: relay throughput {ratio:.0%} of direct (target >= {TARGET_RATIO:.0%}), "
        f"memory growth {growth:+.1f} MB (target < {TARGET_GROWTH_MB} MB): "
        f"{'MISSED' if missed else 'OK'}"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
