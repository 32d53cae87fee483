"""The incremental SSE parser: WHATWG field rules, every line ending, any chunking."""

from hypothesis import given, settings
from hypothesis import strategies as st

from rivya_dashboard.rivya.sse import ServerSentEvent, SSEParser


def parse(*chunks: bytes) -> list[ServerSentEvent]:
    parser = SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_it_parses_named_events_and_defaults_the_name_to_message() -> None:
    events = parse(b"event: delta\ndata: hi\n\ndata: plain\n\n")
    assert events == [ServerSentEvent("delta", "hi"), ServerSentEvent("message", "plain")]


def test_it_joins_multi_line_data_with_newlines() -> None:
    assert parse(b"data: one\ndata:two\ndata\ndata:  three\n\n") == [
        ServerSentEvent("message", "one\ntwo\n\n three")
    ]


def test_it_accepts_crlf_cr_and_lf_line_endings_mixed() -> None:
    events = parse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n")
    assert [event.data for event in events] == ["a", "b", "c", "d"]


def test_it_skips_comments_and_unknown_fields() -> None:
    assert parse(b": ping\n\nfoo: bar\ndata: x\n: mid-event comment\n\n") == [
        ServerSentEvent("message", "x")
    ]


def test_it_keeps_the_last_event_id_and_retry_for_later_events() -> None:
    events = parse(b"id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert events == [
        ServerSentEvent("message", "a", id="7", retry=1500),
        ServerSentEvent("message", "b", id="7", retry=1500),
        ServerSentEvent("message", "c", id="", retry=1500),
    ]


def test_it_ignores_ids_with_nul_and_retries_that_are_not_digits() -> None:
    parser = SSEParser()
    events = parser.feed(b"id: 1\n\nid: a\0b\nretry: 10s\nretry: \xd9\xa3\ndata: x\n\n")
    assert events == [ServerSentEvent("message", "x", id="1")]
    assert parser.retry is None
    assert parser.last_event_id == "1"


def test_it_does_not_dispatch_an_event_without_data() -> None:
    assert parse(b"event: delta\n\n\n\ndata: y\n\n") == [ServerSentEvent("message", "y")]


def test_it_strips_a_leading_bom_even_when_split() -> None:
    assert parse(b"\xef", b"\xbb", b"", b"\xbfdata: x\n\n") == [ServerSentEvent("message", "x")]
    # Not a BOM: the line's field name becomes "\ufffddata", an unknown field.
    assert parse(b"\xefdata: x\n\n") == []


def test_it_keeps_a_multibyte_character_split_across_chunks() -> None:
    data = "data: héllo ☃\n\n".encode()
    assert parse(data[:8], data[8:13], data[13:]) == [ServerSentEvent("message", "héllo ☃")]


def test_it_replaces_bytes_that_are_not_utf8() -> None:
    assert parse(b"data: \xff\n\n") == [ServerSentEvent("message", "\ufffd")]


def test_a_crlf_split_between_chunks_is_one_line_break() -> None:
    assert parse(b"data: a\r", b"\n", b"\r", b"\ndata: b\r", b"\r") == [
        ServerSentEvent("message", "a"),
        ServerSentEvent("message", "b"),
    ]


def test_it_reports_a_stream_cut_mid_event() -> None:
    parser = SSEParser()
    assert not parser.mid_event
    parser.feed(b"data: par")
    assert parser.mid_event
    parser.feed(b"tial\n")
    assert parser.mid_event
    parser.feed(b"\n: heartbeat\n")
    assert not parser.mid_event


# --- Any split of the byte stream yields the same events -------------------------------------

line_endings = st.sampled_from([b"\n", b"\r\n", b"\r"])
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
    max_size=12,
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[ServerSentEvent]]:
    """A byte stream of random events, with the events a correct parser must return."""
    out = b""
    expected = []
    last_id = None
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            out += b": " + draw(texts).encode() + draw(line_endings)
        name = draw(st.sampled_from([None, "delta", "done", "session"]))
        if name:
            out += b"event: " + name.encode() + draw(line_endings)
        if draw(st.booleans()):
            last_id = draw(texts)
            out += b"id: " + last_id.encode() + draw(line_endings)
        lines = draw(st.lists(texts, min_size=1, max_size=3))
        for line in lines:
            ending = draw(line_endings)
            out += b"data: " + line.encode() + ending
        # After a lone CR, an LF would only complete that CRLF instead of ending the event.
        out += draw(st.sampled_from([b"\r", b"\r\n"]) if ending == b"\r" else line_endings)
        expected.append(ServerSentEvent(name or "message", "\n".join(lines), id=last_id))
    return out, expected


@settings(max_examples=300, deadline=None)
@given(streams(), st.data())
def test_any_split_yields_the_same_events(stream: tuple, data: st.DataObject) -> None:
    raw, expected = stream
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    chunks = [raw[start:end] for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert parse(raw) == expected
    assert parse(*chunks) == expected
    assert parse(*[bytes([byte]) for byte in raw]) == expected
