"""An incremental text/event-stream parser (the WHATWG "server-sent events" rules).

Feed it bytes exactly as they come off the socket, in any chunking: a chunk may end inside a line,
between the CR and LF of a line break, or inside a multi-byte UTF-8 character. It returns the
events that became complete. It never blocks and never reads: the caller owns the connection, so a
dropped connection is the caller's to report (``mid_event`` tells whether one was cut off).
"""

import re
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"
LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEParser:
    def __init__(self) -> None:
        self._buffer = b""
        self._after_cr = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._has_fields = False
        self.last_event_id: str | None = None
        self.retry: int | None = None

    @property
    def mid_event(self) -> bool:
        """True while a line or an event has begun but not ended with its blank line."""
        return bool(self._buffer) or self._has_fields

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._buffer += chunk
        if not self._started:
            if len(self._buffer) < len(BOM) and BOM.startswith(self._buffer):
                return []
            self._started = True
            self._buffer = self._buffer.removeprefix(BOM)
        events = []
        for line in self._take_lines():
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def _take_lines(self) -> list[bytes]:
        buffer = self._buffer
        # A chunk that ended on CR may have split a CRLF: the LF then starts the next chunk.
        start = 1 if self._after_cr and buffer.startswith(b"\n") else 0
        lines = []
        for match in LINE_END.finditer(buffer, start):
            lines.append(buffer[start : match.start()])
            start = match.end()
        if buffer:
            self._after_cr = buffer.endswith(b"\r")
        self._buffer = buffer[start:]
        return lines

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._has_fields = True
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event, self._data
        self._event, self._data, self._has_fields = "", [], False
        if not data:
            return None
        return ServerSentEvent(
            event=event or "message", data="\n".join(data), id=self.last_event_id, retry=self.retry
        )
