"""`manage.py worker`: the task worker waits out a database outage instead of exiting, and
housekeeping marks failed a task a killed worker left running.

The outage is played at the connection, where a stopped server or a locked file shows: every
cursor fails while it lasts (the claiming transaction's BEGIN, the claim, the worker's probe,
the saving of a result). It lasts a number of seconds of the worker's own waiting, so the test
waits for nothing. tests/scale/test_faults.py shows the same with a real outage under `serve`.
"""

import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import InterfaceError, OperationalError, ProgrammingError, connections
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from rivya_dashboard.console import tasks
from rivya_dashboard.console.management.commands import worker as worker_command

# The worker closes its connections after an outage: on PostgreSQL that would end the
# transaction a plain test runs in.
pytestmark = pytest.mark.django_db(transaction=True)


class Outage:
    """The database refusing every cursor for `seconds` of the worker's waiting."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.connection = connections["default"]
        self.real_cursor = self.connection.cursor
        self.left = 0.0
        self.waits: list[float] = []

    def begin(self, seconds: float) -> None:
        self.left = seconds

    def cursor(self, *args: object, **kwargs: object):
        if self.left > 0:
            raise self.error
        return self.real_cursor(*args, **kwargs)

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.left -= seconds


OUTAGES: list[Outage] = []


@pytest.fixture
def outage(request, monkeypatch) -> Outage:
    played = Outage(request.param)
    monkeypatch.setattr(played.connection, "cursor", played.cursor)
    monkeypatch.setattr(worker_command, "sleep", played.sleep)
    OUTAGES.append(played)
    yield played
    OUTAGES.remove(played)


@task()
def shout(text: str) -> str:
    return text.upper()


@task()
def shout_as_the_database_goes(text: str) -> str:
    OUTAGES[-1].begin(0.5)
    return text.upper()


def run_worker() -> None:
    """One batch of the worker, as `manage.py worker --batch` runs it."""
    worker_command.SteadyWorker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="steady",
        excluded_queue_names=[],
    ).run()


def outage_lines(caplog) -> list[str]:
    lines = [record for record in caplog.records if record.name == "rivya.worker"]
    assert all(record.exc_info is None for record in lines)
    return [record.getMessage() for record in lines]


ERRORS = [
    OperationalError("connection to server at 127.0.0.1 failed: Connection refused\n\tRunning?"),
    InterfaceError("connection already closed"),
]


@pytest.mark.parametrize("outage", ERRORS, indirect=True)
def test_the_worker_waits_out_an_outage_then_runs_the_task(outage, caplog):
    queued = shout.enqueue("after the storm")
    outage.begin(3.0)

    run_worker()

    assert DBTaskResult.objects.get(pk=queued.id).status == TaskResultStatus.SUCCESSFUL
    assert shout.get_result(queued.id).return_value == "AFTER THE STORM"
    assert outage.waits == [0.5, 1.0, 2.0]
    began, ended = outage_lines(caplog)
    reason = str(outage.error).splitlines()[0]
    assert began == (
        f"Worker steady: the database is not answering ({reason}); waiting for it to come back"
    )
    assert re.fullmatch(
        r"Worker steady: the database answers again after [\d.]+ s; taking tasks again", ended
    )


def test_a_long_outage_is_asked_about_every_five_seconds():
    assert [wait for wait, _ in zip(worker_command.waits(), range(7), strict=False)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        5.0,
        5.0,
        5.0,
    ]


@pytest.mark.parametrize("outage", ERRORS[:1], indirect=True)
def test_a_task_whose_result_the_outage_kept_from_saving_is_marked_failed(outage, caplog):
    queued = shout_as_the_database_goes.enqueue("lost")

    run_worker()

    row = DBTaskResult.objects.get(pk=queued.id)
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == "django.db.utils.OperationalError"
    assert "Connection refused" in row.traceback
    assert outage.waits == [0.5]
    assert len(outage_lines(caplog)) == 2


@pytest.mark.parametrize("outage", [ProgrammingError("no such table")], indirect=True)
def test_a_fault_in_the_console_still_ends_the_worker(outage, caplog):
    shout.enqueue("never")
    outage.begin(1.0)

    with pytest.raises(ProgrammingError):
        run_worker()
    assert outage.waits == [] and outage_lines(caplog) == []


def test_housekeeping_marks_failed_a_task_its_killed_worker_left_running():
    now = timezone.now()
    ages = {"abandoned": timedelta(days=1, minutes=1), "long": timedelta(hours=23)}
    ids = {}
    for name, age in ages.items():
        ids[name] = shout.enqueue(name).id
        DBTaskResult.objects.filter(pk=ids[name]).update(
            status=TaskResultStatus.RUNNING, started_at=now - age, worker_ids=["killed"]
        )
    ids["waiting"] = shout.enqueue("waiting").id

    tasks.housekeeping.call()

    status = {name: shout.get_result(pk).status for name, pk in ids.items()}
    assert status == {
        "abandoned": TaskResultStatus.FAILED,
        "long": TaskResultStatus.RUNNING,
        "waiting": TaskResultStatus.READY,
    }
    abandoned = shout.get_result(ids["abandoned"])
    (error,) = abandoned.errors
    assert error.exception_class is tasks.WorkerLost
    assert "its worker is gone" in error.traceback and abandoned.finished_at is not None


def test_the_worker_refuses_to_reload_on_code_changes():
    """It is the worker `serve` runs in production; developers who want reloading have
    db_worker."""
    with pytest.raises(CommandError, match="db_worker --reload"):
        call_command("worker", "--reload")
