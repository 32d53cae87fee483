"""Background work for generations and the catalogue (django-tasks, run by `manage.py worker`).

Jobs survive worker restarts twice over: polls are rows in the task table, picked up by whichever
worker starts next; and the housekeeping task, which re-enqueues itself every minute, re-enqueues
any running job whose poll is overdue (a worker killed mid-poll loses that one poll, not the job).
Housekeeping also marks failed a task row still running a day after it started: the worker that
claimed it was killed, and nothing else would ever finish the row.
"""

import logging
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult

from rivya_dashboard import metrics
from rivya_dashboard.console import generations, models_catalog
from rivya_dashboard.console.models import CatalogueSync
from rivya_dashboard.rivya.errors import RivyaError

logger = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 60
# No task of the console runs for hours (each is a few API calls and downloads, under timeouts):
# one still running after this lost its worker. Should a task outlive it after all, its own
# result overwrites the mark when it ends.
ABANDONED_AFTER = timedelta(days=1)
# Other apps' periodic chores, registered from their AppConfig.ready() so this module needs no
# import of them (the workbench's document refresh and call pruning).
HOUSEKEEPING_STEPS: list[Callable[[], object]] = []


def register_housekeeping(step: Callable[[], object]) -> None:
    if step not in HOUSEKEEPING_STEPS:
        HOUSEKEEPING_STEPS.append(step)


@task()
def poll_generation(generation_id: int, poll_count: int) -> str:
    generation = generations.do_poll(generation_id, poll_count)
    state = generation.status if generation else "skipped"
    metrics.POLLS.labels(state).inc()
    return state


@task()
def refresh_catalogue() -> int:
    try:
        return models_catalog.do_refresh(models_catalog.catalogue_key())
    except RivyaError as exc:
        logger.warning("Catalogue refresh failed: %s", exc)
        return 0


@task()
def housekeeping() -> int:
    if models_catalog.is_stale(CatalogueSync.current()):
        refresh_catalogue.call()
    resumed = generations.do_resume_stalled()
    do_fail_abandoned()
    for step in HOUSEKEEPING_STEPS:
        try:
            step()
        except Exception:
            # One failing chore must not break the chain that follows every running job.
            logger.exception("Housekeeping step %s failed", step.__qualname__)
    run_after = timezone.now() + timedelta(seconds=HOUSEKEEPING_SECONDS / settings.RIVYA_POLL_SPEED)
    # Two page loads racing through ensure_housekeeping start two chains: the later one ends here.
    if not chain_waiting(housekeeping):
        housekeeping.using(run_after=run_after).enqueue()
    return resumed


class WorkerLost(Exception):
    """The worker running a task stopped (killed, or its host gone) before saving the result."""


def do_fail_abandoned(now: datetime | None = None) -> int:
    """Mark failed every task row still running ABANDONED_AFTER after it started."""
    now = now or timezone.now()
    hours = ABANDONED_AFTER.total_seconds() / 3600
    lost = WorkerLost(f"still running {hours:.0f} hours after it started; its worker is gone")
    return (
        DBTaskResult.objects.running()
        .filter(started_at__lt=now - ABANDONED_AFTER)
        .update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
            traceback="".join(traceback.format_exception(lost)),
        )
    )


def chain_waiting(chained: Task) -> bool:
    """Whether a self-enqueueing task already has its next run waiting in the queue."""
    waiting = DBTaskResult.objects.filter(
        task_path=chained.module_path, status=TaskResultStatus.READY
    )
    return waiting.exists()


def ensure_housekeeping() -> None:
    """Start the housekeeping chain unless one is already waiting (a killed worker breaks it)."""
    if not chain_waiting(housekeeping):
        housekeeping.enqueue()
