"""Keep `serve`'s children running: restart a crashed one with back-off, stop all on a signal.

Children run in their own process group so a Ctrl-C in the terminal reaches only the supervisor,
which then stops them in order (SIGTERM, wait, SIGKILL) instead of racing them.
"""

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("rivya.serve")

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
# A child that ran this long before exiting is treated as a one-off crash, not a crash loop.
STABLE_SECONDS = 30.0
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM the child if the supervisor itself is killed (kill -9, OOM)."""
    if sys.platform.startswith("linux"):
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    pass_fds: tuple[int, ...] = ()
    # Where the child starts: `python -m` imports from there first, before any --chdir.
    cwd: Path | None = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    retry_seconds: float = FIRST_RETRY_SECONDS
    restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - argv is built by serve, never from input
            self.argv,
            pass_fds=self.pass_fds,
            cwd=self.cwd,
            process_group=0,
            # preexec_fn is unsafe only with threads, and the supervisor runs none.
            preexec_fn=die_with_parent,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        logger.info("%s started (pid %s)", self.name, self.process.pid)

    def check(self, now: float) -> None:
        """Notice an exit and schedule the restart; start again once the back-off has passed."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        code = self.process.poll() if self.process else None
        if code is None:
            return
        if now - self.started_at >= STABLE_SECONDS:
            self.retry_seconds = FIRST_RETRY_SECONDS
        logger.error(
            "%s (pid %s) exited with code %s; restarting in %.0f s",
            self.name,
            self.process.pid,
            code,
            self.retry_seconds,
        )
        self.restart_at = now + self.retry_seconds
        self.retry_seconds = min(self.retry_seconds * 2, MAX_RETRY_SECONDS)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        if self.is_running():
            self.process.terminate()

    def kill_group(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Supervisor:
    def __init__(self, children: list[Child], *, stop_timeout: float) -> None:
        self.children = children
        self.stop_timeout = stop_timeout
        self.stop_requested = threading.Event()
        self.force_requested = threading.Event()

    def request_stop(self, signum: int, frame: object) -> None:
        if self.stop_requested.is_set():
            # A second Ctrl-C means "now": skip the graceful wait.
            self.force_requested.set()
        self.stop_requested.set()

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self.request_stop) for sig in STOP_SIGNALS}
        try:
            for child in self.children:
                child.start()
            while not self.stop_requested.wait(POLL_SECONDS):
                now = time.monotonic()
                for child in self.children:
                    child.check(now)
            self.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        logger.info("Stopping…")
        for child in self.children:
            child.terminate()
        deadline = time.monotonic() + self.stop_timeout
        while any(child.is_running() for child in self.children):
            if time.monotonic() >= deadline or self.force_requested.wait(POLL_SECONDS):
                break
        for child in self.children:
            if child.is_running():
                logger.warning("%s did not stop in time; killing it", child.name)
            # Kill the whole group even after a clean exit: it catches any orphaned grandchild.
            child.kill_group()
            if child.process is not None:
                child.process.wait()
        logger.info("Stopped")
