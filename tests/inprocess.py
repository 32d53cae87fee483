"""A requests transport adapter that hands each request to a WSGI app in the same process.

Mount it on a requests.Session and the RivyaClient talks to Django's WSGI handler (the sandbox)
without a socket, through the very same code path it uses over HTTP: headers, query strings,
streamed multipart bodies and streamed responses (SSE) all go through. The response body is read
lazily from the app's iterator, so closing the response closes the app's iterator, exactly like a
client hanging up on a server.
"""

import io
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import requests
import urllib3
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

WSGIApp = Callable[..., Iterable[bytes]]


@contextmanager
def keep_db_connections() -> Iterator[None]:
    """Like Django's test Client: a request must not close the test's transaction connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class _BodyStream(io.RawIOBase):
    """The app's response iterator as a raw file; an app that fails mid-body is a reset peer."""

    def __init__(self, app_iter: Iterable[bytes]) -> None:
        self._app_iter = app_iter
        self._chunks = iter(app_iter)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                with keep_db_connections():
                    self._pending = next(self._chunks)
            except StopIteration:
                return 0
            except Exception as exc:
                raise ConnectionResetError(f"the app failed mid-response: {exc!r}") from exc
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._app_iter, "close", None)
            if close is not None:
                with keep_db_connections():
                    close()
        super().close()


class _RequestBody(io.RawIOBase):
    """A streamed request body (e.g. MultipartEncoder) as the file WSGI servers hand to apps."""

    def __init__(self, source: Any) -> None:
        self._read = source.read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class InProcessAdapter(BaseAdapter):
    def __init__(self, app: WSGIApp | None = None) -> None:
        super().__init__()
        self.app = app or WSGIHandler()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        # requests.Session reads the body itself unless stream=True; timeouts cannot happen here.
        environ = self._environ(request)
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info: Any = None) -> None:
            started["status"], started["headers"] = status, headers

        with keep_db_connections():
            app_iter = self.app(environ, start_response)
        code, _, reason = started["status"].partition(" ")
        status = int(code)
        headers = urllib3.HTTPHeaderDict()
        for name, value in started["headers"]:
            headers.add(name, value)
        raw = urllib3.HTTPResponse(
            body=io.BufferedReader(_BodyStream(app_iter)),
            headers=headers,
            status=status,
            preload_content=False,
            decode_content=False,
            request_url=request.url,
        )
        response = requests.Response()
        response.status_code = status
        response.reason = reason
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.url = request.url or ""
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        """Nothing pooled: each request's body closes with its response."""

    def _environ(self, request: requests.PreparedRequest) -> dict[str, Any]:
        url = urlsplit(request.url)
        body = request.body
        if body is None:
            body = b""
        if isinstance(body, str):
            body = body.encode()
        stream = (
            io.BytesIO(body) if isinstance(body, bytes) else io.BufferedReader(_RequestBody(body))
        )
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(url.path).decode("iso-8859-1"),
            "QUERY_STRING": url.query,
            "SERVER_NAME": url.hostname or "testserver",
            "SERVER_PORT": str(url.port or (443 if url.scheme == "https" else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme,
            "wsgi.input": stream,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ[f"HTTP_{key}"] = value
        if "CONTENT_LENGTH" not in environ and isinstance(body, bytes):
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ


def in_process_session(app: WSGIApp | None = None) -> requests.Session:
    """A session whose every http(s) request goes to `app` (default: this Django project)."""
    session = requests.Session()
    adapter = InProcessAdapter(app)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
