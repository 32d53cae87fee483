"""The signature doctor names the cause of a failed verification, and agrees with verify()."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rivya_dashboard.rivya import signing
from rivya_dashboard.webhooks.doctor import Candidate, curl_command, diagnose

SECRET = "whsec_" + "s" * 32
NOW = 1_800_000_000
BODY = json.dumps(
    {"id": "evt_abc123", "type": "generation.succeeded", "data": {"id": "task_1", "note": "café"}},
    separators=(",", ":"),
    ensure_ascii=False,
).encode()
CURRENT = [Candidate(SECRET, "current", "current secret")]


def headers(body: bytes = BODY, secret: str = SECRET, at: int = NOW, msg_id: str = "evt_abc123"):
    return signing.sign(secret, body, msg_id=msg_id, timestamp=at)


def test_it_passes_a_genuine_delivery():
    result = diagnose(CURRENT, headers(), BODY, now=NOW)
    assert result.ok
    assert all(step.ok for step in result.steps)


def test_it_names_a_missing_header():
    sent = headers()
    del sent[signing.SIGNATURE_HEADER]
    result = diagnose(CURRENT, sent, BODY, now=NOW)
    assert result.cause == "missing_header"
    assert signing.SIGNATURE_HEADER in result.steps[0].detail


def test_it_recognises_a_standard_webhooks_signature():
    sent = {**headers(), signing.SIGNATURE_HEADER: "v1,c2lnbmF0dXJl"}
    result = diagnose(CURRENT, sent, BODY, now=NOW)
    assert result.cause == "malformed_header"
    assert "Standard Webhooks" in result.summary


def test_it_names_an_api_key_used_as_the_secret():
    result = diagnose(
        [Candidate("rvya_sk_" + "a" * 40, "pasted", "the pasted secret")], headers(), BODY, now=NOW
    )
    assert result.cause == "wrong_secret_kind"
    assert any("API key" in step.detail for step in result.steps)


def test_it_says_by_how_much_a_timestamp_is_stale():
    result = diagnose(CURRENT, headers(at=NOW - 400), BODY, now=NOW)
    assert result.cause == "timestamp_too_old"
    assert "100 s past" in " ".join(step.detail for step in result.steps)


def test_it_names_the_rotated_out_secret():
    old = Candidate("whsec_" + "o" * 32, "retired", "rotated-out secret whsec_oo…oooo")
    result = diagnose([*CURRENT, old], headers(secret=old.value), BODY, now=NOW)
    assert result.cause == "rotated_secret"
    assert result.matched == old
    assert "whsec_oo…oooo" in result.summary


def test_it_accepts_a_previous_secret_and_says_so():
    previous = Candidate("whsec_" + "p" * 32, "previous", "previous secret")
    result = diagnose([*CURRENT, previous], headers(secret=previous.value), BODY, now=NOW)
    assert result.ok
    assert "overlap" in result.steps[-2].detail


def test_it_finds_an_added_newline_and_its_offset():
    result = diagnose(CURRENT, headers(), BODY + b"\n", now=NOW)
    assert (result.cause, result.differs_at) == ("newline_added", len(BODY))


def test_it_finds_a_re_serialized_body():
    pretty = json.dumps(json.loads(BODY), indent=None, ensure_ascii=False).encode()
    result = diagnose(CURRENT, headers(), pretty, now=NOW)
    assert result.cause == "body_reserialized"
    assert result.differs_at == pretty.index(b" ")


ASCII_BODY = json.dumps(
    {"id": "evt_abc123", "type": "generation.succeeded", "data": {"id": "task_1"}},
    separators=(",", ":"),
).encode()


def test_a_body_pasted_as_the_console_shows_it_is_re_serialized_not_re_encoded():
    pretty = json.dumps(json.loads(ASCII_BODY), indent=2, ensure_ascii=False).encode()
    result = diagnose(CURRENT, headers(ASCII_BODY), pretty, now=NOW)
    assert result.cause == "body_reserialized"
    assert "whitespace or key order changed; verify the raw bytes" in result.summary


def test_reordered_keys_are_named_when_the_signed_copy_is_known():
    payload = json.loads(ASCII_BODY)
    reordered = json.dumps(dict(reversed(payload.items())), indent=2).encode()
    result = diagnose(CURRENT, headers(ASCII_BODY), reordered, now=NOW, reference_body=ASCII_BODY)
    assert result.cause == "body_reserialized"
    assert result.differs_at == 1  # "{" then a newline where the signed body has '"'
    assert "whitespace or key order changed; verify the raw bytes" in result.summary


def test_it_finds_a_changed_encoding():
    escaped = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    result = diagnose(CURRENT, headers(), escaped, now=NOW)
    assert result.cause == "encoding_changed"
    assert result.differs_at == BODY.index("é".encode())


def test_the_curl_command_carries_a_valid_signature_and_not_the_secret():
    command = curl_command("http://127.0.0.1:8000/hooks/abc/", BODY, SECRET, "evt_abc123", NOW)
    assert SECRET not in command
    signature = command.split(f"{signing.SIGNATURE_HEADER}: ")[1].split("'")[0]
    sent = {**headers(), signing.SIGNATURE_HEADER: signature}
    assert signing.verify(SECRET, sent, BODY, now=NOW).msg_id == "evt_abc123"


PARTS = st.sampled_from(["id", "timestamp", "body"])


def mutate(data: bytes, position: int, value: int) -> bytes:
    position %= len(data)
    if data[position] == value:
        value = (value + 1) % 256
    return data[:position] + bytes([value]) + data[position + 1 :]


@settings(max_examples=300, deadline=None)
@given(part=PARTS, position=st.integers(min_value=0), value=st.integers(0, 255))
def test_any_single_byte_change_is_rejected_with_the_right_cause(part, position, value):
    sent = headers()
    body = BODY
    if part == "body":
        body = mutate(BODY, position, value)
    else:
        name = signing.ID_HEADER if part == "id" else signing.TIMESTAMP_HEADER
        raw = sent[name].encode("latin-1")
        sent[name] = mutate(raw, position, value).decode("latin-1")
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(SECRET, sent, body, now=NOW)
    result = diagnose(CURRENT, sent, body, now=NOW, reference_body=BODY)
    expected = {"id": "id_mismatch", "timestamp": "timestamp_changed", "body": "body_changed"}
    assert result.cause == expected[part], (part, result.summary)
    if part == "body":
        assert result.differs_at == position % len(BODY)
