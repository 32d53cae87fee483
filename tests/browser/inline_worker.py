"""Background tasks run inline for browser tests.

The live server shares the test thread's connection to the in-memory SQLite test database, so a
worker thread of its own would lock it out: the worker runs in the test thread, between browser
waits, instead.
"""

import contextlib
import time
from collections.abc import Callable

from django.db import OperationalError
from django_tasks_db.management.commands.db_worker import Worker
from playwright.sync_api import Page


def run_ready_tasks() -> None:
    """One pass of the django-tasks database worker, in this thread."""
    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=20,
        worker_id="browser-test",
        excluded_queue_names=[],
    )
    # The live server may hold the database for a moment; the next pass catches up.
    with contextlib.suppress(OperationalError):
        worker.run()


def work_until(page: Page, condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_ready_tasks()
        if condition():
            return
        page.wait_for_timeout(150)
    raise AssertionError(f"the condition did not hold within {timeout} s")
