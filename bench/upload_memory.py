"""Memory growth of RivyaClient.upload_file while it streams a 500 MB file to the sandbox.

Starts its own console (manage.py runserver on a free port, temporary data dir, the sandbox's
video upload limit raised above the file size), or targets --url/--key. The file is produced on
the fly like reading /dev/zero: an MP4 signature, then zeros, so nothing of it is in memory
beforehand. The client process's resident memory is sampled from the progress callback; the
figure is the peak over the baseline taken just before the upload. Exits 1 at 64 MB or more.

    python bench/upload_memory.py [--megabytes 500] [--url SANDBOX_API_BASE_URL --key KEY]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from client_overhead import console  # noqa: E402

TARGET_GROWTH_MB = 64
# An ISO-BMFF "ftyp" box: what the sandbox's signature check reads as video/mp4.
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


class ZeroFile:
    """`size` bytes read on demand: the MP4 head, then zeros. `len` is what is left to read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0

    @property
    def len(self) -> int:
        return self.size - self.position

    def read(self, amount: int = -1) -> bytes:
        if amount is None or amount < 0:
            amount = self.len
        amount = min(amount, self.len)
        start = self.position
        self.position += amount
        head = MP4_HEAD[start : start + amount]
        return head + bytes(amount - len(head))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def upload(base: str, key: str, megabytes: int, server_pid: int | None) -> float:
    from rivya_dashboard.rivya.client import RivyaClient

    client = RivyaClient(base, key, session=requests.Session(), timeout=(3.05, 600.0))
    size = megabytes * 1024 * 1024
    baseline = rss_mb()
    server_baseline = rss_mb(server_pid) if server_pid else 0.0
    peaks = {"client": baseline, "server": server_baseline, "calls": 0}

    def progress(sent: int, total: int) -> None:
        peaks["calls"] += 1
        if peaks["calls"] % 256 == 0 or sent == total:
            peaks["client"] = max(peaks["client"], rss_mb())
            if server_pid:
                peaks["server"] = max(peaks["server"], rss_mb(server_pid))

    start = time.perf_counter()
    answer = client.upload_file(
        ZeroFile(size), kind="video", filename="zeros.mp4", progress=progress
    )
    seconds = time.perf_counter() - start
    growth = peaks["client"] - baseline
    print(f"uploaded {megabytes} MB in {seconds:.1f} s ({megabytes / seconds:.0f} MB/s)")
    print(f"file {answer.get('id')} size_bytes={answer.get('size_bytes')} (sent {size})")
    print(f"client RSS: baseline {baseline:.1f} MB, peak {peaks['client']:.1f} MB")
    if server_pid:
        server_growth = peaks["server"] - server_baseline
        print(f"server RSS growth (runserver, for reference): {server_growth:+.1f} MB")
    return growth


def serve(address: str, megabytes: int) -> None:
    """runserver with the sandbox's video limit raised to `megabytes` (the bench's server)."""
    import django
    from django.core.management import call_command

    django.setup()
    from rivya_dashboard.sandbox import choices

    choices.FILE_LIMITS["video"]["max_bytes"] = megabytes * 1024 * 1024
    call_command("runserver", address, use_reloader=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--serve", metavar="ADDRESS", help=argparse.SUPPRESS)
    parser.add_argument("--url", help="sandbox API base URL of a running console")
    parser.add_argument("--key", help="sandbox key for --url")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    if args.serve:
        serve(args.serve, args.megabytes + 1)
        return 0
    if args.url:
        growth = upload(args.url, args.key, args.megabytes, None)
    else:
        server_command = [sys.executable, __file__, "--megabytes", str(args.megabytes), "--serve"]
        with (
            tempfile.TemporaryDirectory(prefix="rivya-bench-") as data_dir,
            console(data_dir, server_command) as (base, key, server),
        ):
            growth = upload(base, key, args.megabytes, server.pid)
    verdict = "OK" if growth < TARGET_GROWTH_MB else "MISSED"
    print(
        f"summary: client memory growth {growth:+.1f} MB uploading {args.megabytes} MB "
        f"(target < {TARGET_GROWTH_MB} MB): {verdict}"
    )
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
