"""Log lines name their request: an id on every response and line, JSON on request, and the
worker running a task under the id of the request that enqueued it."""

import json
import logging

import pytest
from django_tasks import task

from rivya_dashboard import request_context
from rivya_dashboard.console.models import TaskOrigin
from tests.browser.inline_worker import run_ready_tasks

ran_under: list[str] = []


@task()
def note_request_id() -> str:
    logging.getLogger("rivya.test").info("task ran")
    ran_under.append(request_context.current().request_id)
    return request_context.current().request_id


@pytest.fixture
def json_lines():
    stream = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stream.append(self.format(record))

    handler = Collect()
    handler.setFormatter(request_context.JsonFormatter())
    handler.addFilter(request_context.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_every_response_and_its_log_line_carry_one_request_id(clients, members, json_lines):
    response = clients["operator"].get("/models/")

    request_id = response["X-Request-Id"]
    assert request_id.startswith("req_")
    lines = [json.loads(line) for line in json_lines if request_id in line]
    request_line = next(line for line in lines if line["logger"] == "rivya.requests")
    assert request_line["member_id"] == members["operator"].pk
    assert request_line["view"] == "models"
    assert request_line["status"] == 200
    assert request_line["duration_ms"] >= 0
    assert request_line["level"] == "INFO" and request_line["time"].endswith("Z")
    assert all(members["operator"].username not in line for line in json_lines)


def test_a_refused_request_is_one_line_without_a_traceback(clients, json_lines):
    response = clients["viewer"].get("/accounts/team/")
    assert response.status_code == 403
    refused = [json.loads(line) for line in json_lines if '"django.request"' in line]
    assert [line["message"] for line in refused] == [
        "Forbidden (Permission denied): /accounts/team/"
    ]
    assert "exception" not in refused[0]


def test_two_requests_get_two_ids(clients):
    first = clients["viewer"].get("/models/")["X-Request-Id"]
    second = clients["viewer"].get("/models/")["X-Request-Id"]
    assert first != second


def test_a_line_outside_any_request_has_no_request_id(json_lines):
    logging.getLogger("rivya.test").warning("background")
    line = json.loads(json_lines[-1])
    assert line["request_id"] is None and line["member_id"] is None


def test_an_exception_is_one_json_line_with_its_traceback(json_lines):
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("rivya.test").exception("failed")
    line = json.loads(json_lines[-1])
    assert "ValueError: broken" in line["exception"]


def test_a_task_runs_under_the_id_of_the_request_that_enqueued_it(transactional_db, json_lines):
    ran_under.clear()
    token = request_context.bind(request_context.Context(request_id="req_enqueuer", member_id=7))
    try:
        result = note_request_id.enqueue()
    finally:
        request_context.CURRENT.reset(token)
    assert TaskOrigin.objects.get(task_id=str(result.id)).request_id == "req_enqueuer"

    run_ready_tasks()

    assert ran_under == ["req_enqueuer"]
    task_line = json.loads(next(line for line in json_lines if '"task ran"' in line))
    assert task_line["request_id"] == "req_enqueuer"
    assert task_line["view"].endswith("note_request_id")
    assert request_context.current().request_id == ""


def test_a_task_enqueued_outside_a_request_gets_an_id_of_its_own(transactional_db):
    ran_under.clear()
    note_request_id.enqueue()
    run_ready_tasks()
    assert ran_under[0].startswith("req_")
    assert not TaskOrigin.objects.exists()
