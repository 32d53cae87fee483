"""Webhook signing: a known-answer vector, every failure reason, single-byte tamper rejection."""

import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rivya_dashboard.rivya.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    compute_signature,
    sign,
    verify,
)

SECRET = "whsec_test_8f2a9c1e7b6d4053"
OTHER_SECRET = "whsec_other_00112233445566"
NOW = 1_778_457_600  # 2026-05-11T00:00:00Z
EVENT_ID = "evt_1x9c0k2m4q6s8u0w2y4a6c8e"
BODY = json.dumps(
    {"id": EVENT_ID, "object": "event", "type": "generation.succeeded", "data": {"id": "task_1"}},
    separators=(",", ":"),
).encode()

Reason = WebhookVerificationError


def signed_headers(body: bytes = BODY, secret: str = SECRET, timestamp: int = NOW) -> dict:
    return sign(secret, body, msg_id=EVENT_ID, timestamp=timestamp)


def reason_of(secrets, headers, body=BODY, **kwargs) -> str:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(secrets, headers, body, now=NOW, **kwargs)
    return caught.value.reason


def test_it_matches_the_known_answer_vector():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    headers = signed_headers()

    assert headers == {
        ID_HEADER: EVENT_ID,
        TIMESTAMP_HEADER: str(NOW),
        SIGNATURE_HEADER: f"v1={expected}",
    }


def test_it_matches_a_fixed_hex_vector():
    # Frozen so that a change to the scheme (key encoding, separator) cannot pass unnoticed.
    digest = compute_signature("whsec_abc", 1700000000, b'{"id":"evt_1"}')

    assert digest == hmac.new(b"whsec_abc", b'1700000000.{"id":"evt_1"}', "sha256").hexdigest()
    assert digest == "79f159714a0d01d9505691104b38e71f0dbb0d4bdeef387b113d07b870f50db3"


def test_it_verifies_and_reports_the_matching_secret():
    verified = verify([OTHER_SECRET, SECRET], signed_headers(), BODY, now=NOW)

    assert (verified.msg_id, verified.timestamp, verified.secret_index) == (EVENT_ID, NOW, 1)


def test_it_accepts_one_secret_as_a_plain_string():
    assert verify(SECRET, signed_headers(), BODY, now=NOW).secret_index == 0


def test_it_looks_headers_up_case_insensitively():
    headers = {name.lower(): value for name, value in signed_headers().items()}

    assert verify(SECRET, headers, BODY, now=NOW).msg_id == EVENT_ID


def test_it_signs_with_every_secret_during_a_rotation_overlap():
    headers = sign([OTHER_SECRET, SECRET], BODY, msg_id=EVENT_ID, timestamp=NOW)

    assert headers[SIGNATURE_HEADER].count("v1=") == 2
    assert verify(SECRET, headers, BODY, now=NOW).secret_index == 0
    assert verify(OTHER_SECRET, headers, BODY, now=NOW).secret_index == 0


@pytest.mark.parametrize("separator", [" ", ",", ", ", " ,\t"])
def test_it_accepts_several_signatures_with_any_separator(separator):
    good = signed_headers()[SIGNATURE_HEADER]
    stale = "v1=" + "0" * 64
    headers = {**signed_headers(), SIGNATURE_HEADER: f"{stale}{separator}{good}"}

    assert verify(SECRET, headers, BODY, now=NOW).msg_id == EVENT_ID


def test_it_ignores_signatures_of_other_versions():
    headers = {**signed_headers(), SIGNATURE_HEADER: "v2=zz " + signed_headers()[SIGNATURE_HEADER]}

    assert verify(SECRET, headers, BODY, now=NOW).msg_id == EVENT_ID


def test_it_accepts_a_body_that_is_not_a_json_object():
    for body in (b"plain text", b"[1, 2]", b'{"no_id": true}', b"\xff\xfe"):
        assert verify(SECRET, signed_headers(body), body, now=NOW).msg_id == EVENT_ID


def test_it_accepts_timestamps_at_the_edge_of_the_tolerance():
    assert verify(SECRET, signed_headers(timestamp=NOW - 300), BODY, now=NOW)
    assert verify(SECRET, signed_headers(timestamp=NOW + 300), BODY, now=NOW)


def test_it_uses_the_current_time_by_default():
    headers = signed_headers(timestamp=int(time.time()))

    assert verify(SECRET, headers, BODY).msg_id == EVENT_ID


@pytest.mark.parametrize("header", [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_it_names_a_missing_header(header):
    headers = {k: v for k, v in signed_headers().items() if k != header}

    with pytest.raises(WebhookVerificationError) as caught:
        verify(SECRET, headers, BODY, now=NOW)

    assert caught.value.reason == Reason.MISSING_HEADER
    assert header in str(caught.value)


def test_it_treats_an_empty_header_as_missing():
    assert reason_of(SECRET, {**signed_headers(), ID_HEADER: ""}) == Reason.MISSING_HEADER


@pytest.mark.parametrize("value", ["12a", "-5", "1.5", " 1700000000", "١٢٣", "9" * 16])
def test_it_rejects_a_malformed_timestamp(value):
    headers = {**signed_headers(), TIMESTAMP_HEADER: value}

    with pytest.raises(WebhookVerificationError) as caught:
        verify(SECRET, headers, BODY, now=NOW)

    assert caught.value.reason == Reason.MALFORMED_HEADER
    assert TIMESTAMP_HEADER in caught.value.message


@pytest.mark.parametrize(
    "value",
    ["abc", "v1", "v1=", "v1=XYZ", "v1=" + "A" * 64, "v1=" + "a" * 63, "v2=" + "a" * 64, " , "],
)
def test_it_rejects_a_malformed_signature_header(value):
    headers = {**signed_headers(), SIGNATURE_HEADER: value}

    with pytest.raises(WebhookVerificationError) as caught:
        verify(SECRET, headers, BODY, now=NOW)

    assert caught.value.reason == Reason.MALFORMED_HEADER
    assert SIGNATURE_HEADER in caught.value.message


def test_it_says_how_old_a_stale_timestamp_is():
    with pytest.raises(WebhookVerificationError) as caught:
        verify(SECRET, signed_headers(timestamp=NOW - 301), BODY, now=NOW)

    assert caught.value.reason == Reason.TIMESTAMP_TOO_OLD
    assert "301 s old" in caught.value.message


def test_it_says_how_far_in_the_future_a_timestamp_is():
    with pytest.raises(WebhookVerificationError) as caught:
        verify(SECRET, signed_headers(timestamp=NOW + 400), BODY, now=NOW)

    assert caught.value.reason == Reason.TIMESTAMP_IN_FUTURE
    assert "400 s in the future" in caught.value.message


def test_it_honours_a_custom_tolerance():
    headers = signed_headers(timestamp=NOW - 20)

    assert reason_of(SECRET, headers, tolerance=10) == Reason.TIMESTAMP_TOO_OLD


def test_it_rejects_a_signature_made_with_another_secret():
    with pytest.raises(WebhookVerificationError) as caught:
        verify([SECRET], signed_headers(secret=OTHER_SECRET), BODY, now=NOW)

    assert caught.value.reason == Reason.NO_MATCHING_SIGNATURE
    assert "rotated" in caught.value.message


def test_it_rejects_a_changed_body():
    assert reason_of(SECRET, signed_headers(), BODY + b" ") == Reason.NO_MATCHING_SIGNATURE


def test_it_rejects_an_api_key_given_as_the_secret():
    with pytest.raises(WebhookVerificationError) as caught:
        verify([SECRET, "rvya_sk_abcdefabcdefabcdef"], signed_headers(), BODY, now=NOW)

    assert caught.value.reason == Reason.WRONG_SECRET_PREFIX
    assert "Secret #2" in caught.value.message
    assert "API key" in caught.value.message
    assert "abcdef" not in caught.value.message


def test_it_rejects_a_secret_without_the_whsec_prefix():
    with pytest.raises(WebhookVerificationError) as caught:
        verify("plain-secret", signed_headers(), BODY, now=NOW)

    assert caught.value.reason == Reason.WRONG_SECRET_PREFIX
    assert "whsec_" in caught.value.message
    assert "plain-secret" not in caught.value.message


def test_it_refuses_to_sign_with_a_wrong_secret():
    with pytest.raises(WebhookVerificationError) as caught:
        sign("rvya_sk_abc", BODY, msg_id=EVENT_ID, timestamp=NOW)

    assert caught.value.reason == Reason.WRONG_SECRET_PREFIX


def test_it_needs_at_least_one_secret():
    assert reason_of([], signed_headers()) == Reason.NO_SECRET


def test_it_rejects_an_id_header_that_differs_from_the_body():
    headers = {**signed_headers(), ID_HEADER: "evt_someone_else"}

    with pytest.raises(WebhookVerificationError) as caught:
        verify(SECRET, headers, BODY, now=NOW)

    assert caught.value.reason == Reason.ID_MISMATCH
    assert ID_HEADER in caught.value.message


def mutate(data: bytes, index: int, byte: int) -> bytes:
    index %= len(data)
    changed = byte if byte != data[index] else (byte + 1) % 256
    return data[:index] + bytes([changed]) + data[index + 1 :]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    part=st.sampled_from(["id", "timestamp", "body"]),
    index=st.integers(min_value=0, max_value=10_000),
    byte=st.integers(min_value=0, max_value=255),
    event_id=st.from_regex(r"evt_[a-z0-9]{4,24}", fullmatch=True),
    payload=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=12), max_size=4),
)
def test_any_single_byte_change_is_rejected(part, index, byte, event_id, payload):
    body = json.dumps({**payload, "id": event_id}).encode()
    headers = sign(SECRET, body, msg_id=event_id, timestamp=NOW)
    assert verify(SECRET, headers, body, now=NOW).msg_id == event_id

    if part == "body":
        body = mutate(body, index, byte)
    else:
        header = ID_HEADER if part == "id" else TIMESTAMP_HEADER
        # WSGI hands header values over as latin-1 text, so every byte maps to one character.
        raw = headers[header].encode("latin-1")
        headers = {**headers, header: mutate(raw, index, byte).decode("latin-1")}

    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers, body, now=NOW)
