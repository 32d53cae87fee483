"""Run the background worker: django-tasks-db's `db_worker`, which waits out a database outage.

`db_worker` exits on any database error but a lock it expected (and on that one too when it comes
as the worker begins its claiming transaction), so a PostgreSQL restart or a locked SQLite file
would end it and leave the restart to whatever supervises it, a traceback per attempt. This
worker logs the outage in one line when it starts and one when it ends, closes the broken
connections, asks the database again after a short back-off, and goes on taking tasks as soon
as it answers. Other database errors (IntegrityError, ProgrammingError) still end it: they are
faults in the console, not an outage. The options are `db_worker`'s.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import suppress
from time import sleep

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError, connections
from django.utils.translation import gettext as _
from django_tasks.signals import task_finished
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from rivya_dashboard.database_outage import OUTAGE_ERRORS, database_answers, reason

logger = logging.getLogger("rivya.worker")

FIRST_WAIT_SECONDS = 0.5
MAX_WAIT_SECONDS = 5.0


def waits() -> Iterator[float]:
    """Pauses between asking the database again: short at first, since most outages are."""
    wait = FIRST_WAIT_SECONDS
    while True:
        yield wait
        wait = min(wait * 2, MAX_WAIT_SECONDS)


def close_connections() -> None:
    """Drop this process's database connections; the next query opens a new one."""
    for connection in connections.all(initialized_only=True):
        # Closing a connection the server already dropped may fail in turn; it is gone either way.
        with suppress(DatabaseError):
            connection.close()


class SteadyWorker(db_worker.Worker):
    """The library's worker, run again after an outage instead of letting its error end it."""

    # A task whose result the outage kept the worker from saving, and the error that did.
    unrecorded: tuple[DBTaskResult, BaseException] | None = None

    def run(self) -> None:
        while True:
            try:
                super().run()
                return
            except OUTAGE_ERRORS as error:
                # Told to stop, it stops: waiting for the database would hold up a shutdown.
                if not self.running:
                    raise
                self.startup_delay = False
                self.wait_out(error)

    def run_task(self, db_task_result: DBTaskResult) -> None:
        try:
            super().run_task(db_task_result)
        except OUTAGE_ERRORS as error:
            self.unrecorded = (db_task_result, error)
            raise

    def wait_out(self, error: BaseException) -> None:
        began = time.monotonic()
        logger.warning(
            "Worker %s: the database is not answering (%s); waiting for it to come back",
            self.worker_id,
            reason(error),
        )
        for wait in waits():
            close_connections()
            sleep(wait)
            if database_answers() and self.record_unrecorded():
                break
        logger.warning(
            "Worker %s: the database answers again after %.1f s; taking tasks again",
            self.worker_id,
            time.monotonic() - began,
        )

    def record_unrecorded(self) -> bool:
        """Mark the task the outage interrupted as failed with its error, and finish it as the
        library does (a poll is resumed by housekeeping); False while the database refuses."""
        if self.unrecorded is None:
            return True
        db_task_result, error = self.unrecorded
        try:
            db_task_result.set_failed(error)
        except OUTAGE_ERRORS:
            return False
        self.unrecorded = None
        backend = type(db_task_result.task.get_backend())
        task_finished.send(sender=backend, task_result=db_task_result.task_result)
        return True


class Command(db_worker.Command):
    help = "Run the background worker; it waits out a database outage instead of exiting."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        # A worker that outlives outages is for running, not developing: no code reloading.
        parser.set_defaults(reload=False)

    def handle(
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        **options: object,
    ) -> None:
        if reload:
            raise CommandError(
                _("This worker does not reload on code changes; use `db_worker --reload` for that.")
            )
        self.configure_logging(verbosity)
        queue_names = queue_name.split(",")
        excluded_queue_names = exclude_queues.split(",") if exclude_queues else []
        if excluded_queue_names and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = SteadyWorker(
            queue_names=queue_names,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded_queue_names,
        )
        worker.configure_signals()
        worker.run()
