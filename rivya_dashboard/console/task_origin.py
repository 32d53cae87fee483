"""A task enqueued during a request runs in the worker under that request's id.

The id is kept beside the queue (TaskOrigin) when the task is enqueued, and bound to the
worker's log context while the task runs; rows older than the retention are pruned by
housekeeping.
"""

import contextvars
from datetime import timedelta

from django.dispatch import receiver
from django.utils import timezone
from django_tasks.signals import task_enqueued, task_finished, task_started

from rivya_dashboard import request_context
from rivya_dashboard.console.models import TaskOrigin

RETENTION = timedelta(days=7)
_bound: dict[str, contextvars.Token] = {}


@receiver(task_enqueued)
def remember_origin(sender: type, task_result, **kwargs: object) -> None:
    request_id = request_context.current().request_id
    if request_id:
        TaskOrigin.objects.create(task_id=str(task_result.id), request_id=request_id)


@receiver(task_started)
def run_under_origin(sender: type, task_result, **kwargs: object) -> None:
    origin = TaskOrigin.objects.filter(task_id=str(task_result.id)).first()
    context = request_context.Context(
        request_id=origin.request_id if origin else request_context.new_request_id(),
        view=task_result.task.module_path,
    )
    _bound[str(task_result.id)] = request_context.bind(context)


@receiver(task_finished)
def leave_origin(sender: type, task_result, **kwargs: object) -> None:
    token = _bound.pop(str(task_result.id), None)
    if token is not None:
        request_context.CURRENT.reset(token)


def prune_origins() -> int:
    return TaskOrigin.objects.filter(created_at__lt=timezone.now() - RETENTION).delete()[0]
