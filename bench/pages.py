"""Page times with 20 simulated users browsing models, history and job pages (1,000 jobs).

Starts `manage.py serve --no-worker` on a free port with a temporary data dir, seeds the
catalogue (the sandbox's models), 1,000 generations (a third with a cached image) and one member
per simulated user. Each user signs in, then browses for --seconds: full pages (models, a model,
history and its later pages, the gallery, a job) and htmx fragments (filtered models and history,
a job's status), with a short think time between clicks. Server time is Django's own, from the
Server-Timing header; the time seen at the client (queueing and loopback included) is printed
next to it. The baseline is /healthz (one SELECT 1) under the same load, in the same run.

Targets: p95 < 100 ms for full pages, < 50 ms for htmx fragments.

    python bench/pages.py [--seconds 30] [--users 20]
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from local_server import free_port, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE_TARGET_MS = 100
FRAGMENT_TARGET_MS = 50
JOBS = 1000
PASSWORD = "bench-password-123456"  # noqa: S105 - a throwaway member in a temporary data dir


def seed(env: dict, users: int) -> list[int]:
    """Members, a key, the catalogue and the jobs; returns the job ids."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    os.environ.update(env)
    import django

    django.setup()
    import json
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from rivya_dashboard.accounts.models import Role, User
    from rivya_dashboard.console.models import Generation, Output, Status
    from rivya_dashboard.console.models_catalog import do_store_catalogue
    from rivya_dashboard.vault.models import ApiKey

    catalogue = json.loads((ROOT / "rivya_dashboard/sandbox/data/models.json").read_text())
    do_store_catalogue({"data": catalogue["models"]})
    members = [
        User.objects.create_user(f"user{n}", f"user{n}@example.test", PASSWORD, role=Role.ADMIN)
        for n in range(users)
    ]
    key = ApiKey.objects.create(label="Team", environment="production", base_url="https://x")
    models = [m["id"] for m in catalogue["models"] if m["category"] in ("image", "video", "audio")]
    now = timezone.now()
    statuses = [Status.SUCCEEDED] * 6 + [Status.FAILED, Status.QUEUED, Status.PROCESSING]
    jobs = Generation.objects.bulk_create(
        Generation(
            member=members[n % users],
            member_name=members[n % users].username,
            key=key,
            key_label=key.label,
            model_id=models[n % len(models)],
            prompt=f"Bench prompt number {n}: a lighthouse in a storm, watercolour",
            params={"aspect_ratio": "16:9"},
            idempotency_key=f"bench-{n}",
            remote_id=f"task_bench{n:019d}",
            status=statuses[n % len(statuses)],
            estimate_credits=5,
            final_credits=5,
            created_at=now - timedelta(minutes=n),
        )
        for n in range(JOBS)
    )
    outputs = Path(settings.MEDIA_ROOT) / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    png = (ROOT / "static/img/favicon.svg").read_bytes()
    cached = []
    for job in jobs[::3]:
        name = f"{job.pk}-0.svg"
        (outputs / name).write_bytes(png)
        cached.append(
            Output(
                generation=job,
                position=0,
                original_url="https://media.example/x.png",
                cached_name=name,
                content_type="image/svg+xml",
                size_bytes=len(png),
                cached_at=now,
            )
        )
    Output.objects.bulk_create(cached)
    return [job.pk for job in jobs]


def tree_cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its descendants (the web workers)."""
    total, pending = 0.0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
        pending.extend(int(child) for child in children)
    return total


def sign_in(origin: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{origin}/accounts/login/").raise_for_status()
    answer = session.post(
        f"{origin}/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"sign-in failed for {username}: HTTP {answer.status_code}")
    return session


def clicks(job_ids: list[int]) -> list[tuple[str, str, bool]]:
    """(kind, path, htmx) the simulated users choose from; kind is page, fragment or baseline."""
    job = random.choice(job_ids)
    return [
        ("page", "/models/", False),
        ("page", "/models/nano-banana-2/", False),
        ("page", "/generations/", False),
        ("page", f"/generations/?page={random.randint(2, 20)}", False),
        ("page", "/generations/gallery/", False),
        ("page", f"/generations/{job}/", False),
        ("fragment", "/models/?category=video", True),
        ("fragment", "/generations/?status=succeeded", True),
        ("fragment", f"/generations/{job}/", True),
        ("fragment", f"/generations/{job}/row/", True),
        ("baseline", "/healthz", False),
    ]


def browse(
    origin: str, session: requests.Session, job_ids: list[int], until: float, times: dict
) -> None:
    while time.monotonic() < until:
        kind, path, htmx = random.choice(clicks(job_ids))
        headers = {"HX-Request": "true"} if htmx else {}
        start = time.perf_counter()
        answer = session.get(origin + path, headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        if answer.status_code != 200:
            raise SystemExit(f"{path} answered HTTP {answer.status_code}")
        times[kind].append(server_ms(answer))
        times[f"{kind} at client"].append(elapsed)
        time.sleep(random.uniform(0.1, 0.4))


def server_ms(answer: requests.Response) -> float:
    """Django's own time from the Server-Timing header (rivya_dashboard/console/server_timing)."""
    timing = answer.headers["Server-Timing"]
    return float(timing.split("dur=", 1)[1].split(";", 1)[0])


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return max(values, default=0.0)
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rivya_dashboard.settings")
    with tempfile.TemporaryDirectory(prefix="rivya-bench-pages-") as data_dir:
        # The bench signs in with a password: it measures pages, not the second factor.
        env = {
            **os.environ,
            "RIVYA_DATA_DIR": data_dir,
            "RIVYA_LOG_LEVEL": "WARNING",
            "RIVYA_MFA_REQUIRED": "0",
        }
        job_ids = seed(env, args.users)
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port), "--no-worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until_up(origin, server)
            sessions = [sign_in(origin, f"user{n}") for n in range(args.users)]
            for session in sessions[:2]:  # warm both web processes' caches
                for _kind, path, _htmx in clicks(job_ids):
                    session.get(origin + path)
            kinds = ("page", "fragment", "baseline")
            times: dict[str, list[float]] = {
                name: [] for kind in kinds for name in (kind, f"{kind} at client")
            }
            cpu_before = tree_cpu_seconds(server.pid)
            until = time.monotonic() + args.seconds
            threads = [
                threading.Thread(target=browse, args=(origin, s, job_ids, until, times))
                for s in sessions
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            cpu_used = tree_cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=30)
    page, fragment, base = p95(times["page"]), p95(times["fragment"]), p95(times["baseline"])
    count = sum(len(times[kind]) for kind in ("page", "fragment", "baseline"))
    print(f"{count} requests from {args.users} users in {args.seconds} s ({JOBS} jobs stored)")
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # CPU per request does not depend on what else the machine runs, unlike the times below.
    print(f"server CPU per request: {cpu_used / count * 1000:.1f} ms on average")
    for kind, values in times.items():
        print(
            f"{kind:20} n={len(values):5}  p50 {statistics.median(values or [0]):6.1f} ms  "
            f"p95 {p95(values):6.1f} ms"
        )
    missed = page >= PAGE_TARGET_MS or fragment >= FRAGMENT_TARGET_MS
    print(
        f"summary: p95 full pages {page:.0f} ms (target < {PAGE_TARGET_MS}, "
        f"{page / base:.1f}x /healthz), htmx fragments {fragment:.0f} ms "
        f"(target < {FRAGMENT_TARGET_MS}, {fragment / base:.1f}x /healthz): "
        f"{'MISSED' if missed else 'OK'}"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
