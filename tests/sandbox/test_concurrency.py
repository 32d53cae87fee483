"""Concurrent submits never take a balance below zero, on SQLite and on PostgreSQL.

Each thread has its own connection (the file_backed_db fixture): on SQLite a file copy of the
test database, opened with the options the console runs with."""

import threading
from collections.abc import Callable

from django.db import connections

from rivya_dashboard.sandbox.keys import issue_key
from rivya_dashboard.sandbox.models import Account, ChatMessage, Generation
from tests.sandbox.conftest import Api

THREADS = 8
SUBMITS_PER_THREAD = 4


def in_thread(work: Callable[[], object]) -> object:
    """Run ORM code on a fresh connection (the threads' database on SQLite)."""
    found: list[object] = []

    def run() -> None:
        found.append(work())
        connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return found[0]


def hammer(raw_key: str, path: str, body: dict) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def submit() -> None:
        api = Api(raw_key)
        start.wait()
        for _ in range(SUBMITS_PER_THREAD):
            response = api.post(path, body)
            with lock:
                statuses.append(response.status_code)
        connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_it_never_overdraws_under_concurrent_generation_submits(file_backed_db):
    raw_key = in_thread(lambda: issue_key(credits=10))  # z-image costs 1: 10 of 32 fit
    statuses = hammer(raw_key, "/generations", {"model": "z-image", "prompt": "race"})

    assert statuses.count(202) == 10, statuses
    assert statuses.count(402) == THREADS * SUBMITS_PER_THREAD - 10
    assert in_thread(lambda: Account.objects.get().credits) == 0
    assert in_thread(Generation.objects.count) == 10


def test_it_never_overdraws_under_concurrent_chat_turns(file_backed_db):
    raw_key = in_thread(lambda: issue_key(credits=9))  # gpt-5-2-chat reserves 3
    statuses = hammer(raw_key, "/chat/completions", {"model": "gpt-5-2-chat", "message": "hi"})

    ok = statuses.count(200)
    assert ok >= 3, statuses
    assert set(statuses) <= {200, 402}
    balance = in_thread(lambda: Account.objects.get().credits)
    replies = in_thread(lambda: ChatMessage.objects.filter(role="assistant").count())
    assert balance >= 0
    # Each short turn settles at 1 credit, so the refunds let more than 3 turns through.
    assert replies == ok
    assert balance == 9 - ok
