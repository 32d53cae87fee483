"""Backup and restore times for a console of --jobs generations (each with one cached output).

Builds the data set in a temporary data dir, then times `manage.py backup --with-secrets` and
`manage.py restore` into a second data dir as subprocesses, as an operator runs them. The
baseline, measured in the same run, is the same pair on an empty console: the summary gives the
ratio. Exits 1 when the restored console does not hold every job.

With DATABASE_URL naming a PostgreSQL server, every console gets a new database of its own there
(pg_dump and pg_restore do the work), dropped at the end; otherwise each runs on its own SQLite.

    [DATABASE_URL=postgres://…] python bench/backup.py [--jobs 10000]
"""

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "bench passphrase 1234"  # noqa: S105 - a throwaway backup

SEED = """
import os
from pathlib import Path
from django.conf import settings
from rivya_dashboard.accounts.models import User
from rivya_dashboard.console.models import Generation, Output
owner = User.objects.create_user("ada", "ada@example.test", "pw-12345678-x", role="owner")
outputs = Path(settings.MEDIA_ROOT) / "outputs"
outputs.mkdir(parents=True, exist_ok=True)
jobs = [Generation(member=owner, member_name="ada", key_label="Prod", model_id="z-image",
        prompt=f"job {n}", idempotency_key=f"bench-{n}", status="succeeded")
        for n in range(int(os.environ["BENCH_JOBS"]))]
Generation.objects.bulk_create(jobs, batch_size=2000)
rows = []
for job in Generation.objects.all().iterator():
    name = f"{job.pk}.png"
    (outputs / name).write_bytes(os.urandom(2048))
    rows.append(Output(generation=job, position=0, original_url="https://cdn.example/x.png",
        cached_name=name, content_type="image/png", size_bytes=2048))
Output.objects.bulk_create(rows, batch_size=2000)
"""
POSTGRES = os.environ.get("DATABASE_URL", "")
COUNT = "from rivya_dashboard.console.models import Generation; print(Generation.objects.count())"


def manage(data_dir: Path, *args: str, **env: str) -> str:
    # Each console's database comes in `env`, never from this process's DATABASE_URL.
    inherited = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    environment = {**inherited, "RIVYA_DATA_DIR": str(data_dir), "RIVYA_DEBUG": "0", **env}
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@contextmanager
def own_database() -> Iterator[dict[str, str]]:
    """The environment of a console on its own database: a new PostgreSQL one, or SQLite."""
    if not POSTGRES.startswith("postgres"):
        yield {}
        return
    name = "rivya_bench_" + secrets.token_hex(4)
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": urlsplit(POSTGRES)._replace(path="/" + name).geturl()}
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def round_trip(jobs: int, work: Path) -> tuple[float, float, int]:
    original, restored, backup = work / "original", work / "restored", work / "backup"
    secret = {"RIVYA_BACKUP_PASSPHRASE": PASSPHRASE}
    with ExitStack() as stack:
        at_original = stack.enter_context(own_database())
        at_restored = stack.enter_context(own_database())
        manage(original, "migrate", "--verbosity=0", **at_original)
        manage(original, "shell", "-c", SEED, BENCH_JOBS=str(jobs), **at_original)
        started = time.perf_counter()
        manage(original, "backup", str(backup), "--with-secrets", **secret, **at_original)
        backed_up = time.perf_counter() - started
        started = time.perf_counter()
        manage(restored, "restore", str(backup), "--with-secrets", **secret, **at_restored)
        restored_in = time.perf_counter() - started
        found = int(manage(restored, "shell", "-c", COUNT, **at_restored).strip().splitlines()[-1])
    return backed_up, restored_in, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as full:
        base_backup, base_restore, _ = round_trip(0, Path(empty))
        backup, restore, found = round_trip(args.jobs, Path(full))
    engine = "PostgreSQL" if POSTGRES.startswith("postgres") else "SQLite"
    print(f"engine: {engine}")
    print(f"empty console: backup {base_backup:.2f} s, restore {base_restore:.2f} s (baseline)")
    print(f"{args.jobs} jobs + outputs: backup {backup:.2f} s, restore {restore:.2f} s")
    print(
        f"summary ({engine}): backup {backup:.2f} s ({backup / base_backup:.1f}x empty), "
        f"restore {restore:.2f} s ({restore / base_restore:.1f}x empty), "
        f"{found}/{args.jobs} jobs restored"
    )
    return 0 if found == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
