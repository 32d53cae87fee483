"""The §1.4 list envelope: newest first, limit 1-100, opaque cursor."""

import pytest

from rivya_dashboard.sandbox.keys import issue_key
from tests.sandbox.conftest import Api, error_code


@pytest.fixture
def five_sessions(api, sandbox_settings) -> list[str]:
    return [
        api.post(
            "/chat/completions", {"model": "gemini-2-5-flash-chat", "message": f"m{n}"}
        ).json()["session_id"]
        for n in range(5)
    ]


def test_pages_walk_every_item_once_newest_first(api, five_sessions):
    seen = []
    page = api.get("/chat/sessions", limit=2).json()
    while True:
        assert page["object"] == "list"
        assert len(page["data"]) <= 2
        seen += [row["id"] for row in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        page = api.get("/chat/sessions", limit=2, cursor=page["next_cursor"]).json()
    assert seen == list(reversed(five_sessions))


def test_the_default_limit_is_20_and_filters_apply(api, five_sessions):
    page = api.get("/chat/sessions").json()
    assert len(page["data"]) == 5 and page["has_more"] is False
    assert api.get("/chat/sessions", model="gpt-5-2-chat").json()["data"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit: must be at least 1"),
        ({"limit": "101"}, "limit: must be at most 100"),
        ({"limit": "ten"}, "limit: must be a whole number"),
        ({"cursor": "garbage"}, "cursor: is not a cursor this list returned"),
        ({"cursor": "eyJhIjoxfQ"}, "cursor: is not a cursor"),
    ],
)
def test_bad_limits_and_cursors_are_validation_failed(api, params, message):
    response = api.get("/chat/sessions", **params)
    assert response.status_code == 400
    assert error_code(response) == "validation_failed"
    assert message in response.json()["error"]["message"]


def test_a_cursor_from_another_account_shows_nothing_of_theirs(api, five_sessions):
    cursor = api.get("/chat/sessions", limit=1).json()["next_cursor"]
    other = Api(issue_key())
    page = other.get("/chat/sessions", cursor=cursor)
    assert page.status_code == 200
    assert page.json()["data"] == []
