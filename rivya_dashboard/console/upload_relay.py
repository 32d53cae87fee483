"""The pipelined upload: the browser's bytes go on to the Files API while they are still arriving.

The browser states the file's exact size in the query string (it knows `file.size`), so the
outgoing multipart body has a known length before the first byte is read. RelayUploadHandler
hands each chunk Django parses to a bounded queue; a relay thread streams the queue to the API.
The queue holds at most QUEUE_CHUNKS chunks, so a slow API slows the browser down instead of
filling memory, and nothing touches the disk. The thread does HTTP only; the database stays in
the request's own thread.
"""

import queue
import threading
from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.datastructures import MultiValueDict

from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import RivyaError

# Big chunks keep the per-chunk Python work of the parser and the encoder small next to the
# copying; the queue bounds what waits in memory to QUEUE_CHUNKS x CHUNK_BYTES.
CHUNK_BYTES = 1024 * 1024
QUEUE_CHUNKS = 8
STALL_SECONDS = 60


class BrokenRelay(OSError):
    """The browser stopped sending, or sent more or less than it announced."""


class BodyPipe:
    """A file-like reader over the queue, with the `len` the multipart encoder asks for."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self.current = memoryview(b"")

    @property
    def len(self) -> int:
        return self.remaining

    def read(self, amount: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if not self.current:
            item = self.chunks.get(timeout=STALL_SECONDS)
            if isinstance(item, BaseException):
                raise item
            self.current = memoryview(item)
        amount = len(self.current) if amount is None or amount < 0 else amount
        piece, self.current = self.current[:amount], self.current[amount:]
        self.remaining -= len(piece)
        return bytes(piece)


class RelayUploadHandler(FileUploadHandler):
    """Relays the file field `field` to the Files API as Django parses the request body."""

    chunk_size = CHUNK_BYTES

    def __init__(
        self, request: HttpRequest, *, client: RivyaClient, size: int, field: str, **upload: Any
    ) -> None:
        super().__init__(request)
        self.client = client
        self.size = size
        self.field = field
        self.upload = upload
        self.pipe: BodyPipe | None = None
        self.thread: threading.Thread | None = None
        self.received = 0
        self.outcome: dict[str, Any] = {}

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != self.field or self.pipe is not None:
            return
        self.pipe = BodyPipe(self.size)
        self.thread = threading.Thread(target=self._send, args=(file_name,), daemon=True)
        self.thread.start()

    def _send(self, file_name: str) -> None:
        try:
            self.outcome["remote"] = self.client.upload_file(
                self.pipe, filename=file_name, **self.upload
            )
        except (RivyaError, OSError, queue.Empty) as exc:
            self.outcome["error"] = exc
        finally:
            self._drain()

    def _drain(self) -> None:
        # The request thread may be blocked on a full queue; free it now that nobody reads.
        self.outcome.setdefault("done", True)
        while True:
            try:
                self.pipe.chunks.get_nowait()
            except queue.Empty:
                return

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.pipe is None or self.file_name is None or self.field_name != self.field:
            return raw_data
        self.received += len(raw_data)
        if self.received > self.size:
            self._fail(BrokenRelay("the upload is larger than announced"))
            raise StopUpload(connection_reset=True)
        while True:
            if "done" in self.outcome:
                raise StopUpload(connection_reset=True)
            try:
                self.pipe.chunks.put(bytes(raw_data), timeout=0.5)
                return None
            except queue.Full:
                continue

    def file_complete(self, file_size: int) -> None:
        # A file shorter than announced would leave the reader waiting: tell it so.
        if self.pipe is not None and self.field_name == self.field and self.received < self.size:
            self._fail(BrokenRelay("the upload is smaller than announced"))

    def upload_interrupted(self) -> None:
        self._fail(BrokenRelay("the browser stopped sending"))

    def _fail(self, error: BrokenRelay) -> None:
        if self.pipe is None:
            return
        self.outcome.setdefault("broken", error)
        try:
            self.pipe.chunks.put(error, timeout=1)
        except queue.Full:
            self._drain()

    def result(self) -> dict:
        """The API's answer once the thread is done; raises what went wrong."""
        if self.thread is None:
            raise BrokenRelay("no file arrived")
        self.thread.join(timeout=STALL_SECONDS)
        if self.thread.is_alive():
            self._fail(BrokenRelay("the relay stalled"))
            self.thread.join(timeout=5)
        # Whatever the API made of a body cut short, the cause is the browser's side.
        if "broken" in self.outcome:
            raise self.outcome["broken"]
        if "error" in self.outcome:
            raise self.outcome["error"]
        if "remote" not in self.outcome:
            raise BrokenRelay("the relay ended without an answer")
        return self.outcome["remote"]


def csrf_checked_before_body(request: HttpRequest) -> bool:
    """Run the CSRF check on the header token alone, before the body is read: the body goes
    straight to the API, so a forged cross-site post must be stopped before the first byte.

    Django's check reads a form token from request.POST first; an empty POST stands in for the
    body during the check, then is removed so the real body is parsed by the relay afterwards.
    """
    request._post, request._files = QueryDict(), MultiValueDict()
    try:
        refusal = CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {})
    finally:
        del request._post, request._files
    return refusal is None
