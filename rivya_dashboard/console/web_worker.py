"""The gunicorn worker `serve` runs: gthread, with request-parse refusals in the API's JSON shape.

gunicorn answers a request line or header it will not read (414, 431) itself, with an HTML page,
before Django sees the path. Such a request may be meant for the sandbox API, whose every answer
is the §3.1 JSON envelope with a request id, and a browser never sends one; so these refusals are
JSON for every path.
"""

import gc
import json
import secrets
import string

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker
from prometheus_client import multiprocess

# gunicorn's largest request line; longer ones are refused here in JSON.
REQUEST_LINE_LIMIT = 8190
REQUEST_ID_ALPHABET = string.ascii_letters + string.digits
REFUSALS = (
    (LimitRequestLine, 414, "URI Too Long", "uri_too_long", "The URL is too long."),
    (
        LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "headers_too_large",
        "The request headers are too large.",
    ),
)


def refusal(status: int, reason: str, code: str, message: str) -> bytes:
    request_id = "req_" + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(24))
    body = json.dumps({"error": {"code": code, "message": message, "requestId": request_id}})
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-Id: {request_id}\r\n\r\n"
    )
    return (head + body).encode("latin-1")


class JsonRefusalsWorker(ThreadWorker):
    def handle_error(self, req, client, addr, exc) -> None:
        for kind, status, reason, code, message in REFUSALS:
            if isinstance(exc, kind):
                self.log.warning("Refused a request from %s: %s", (addr or ("",))[0], exc)
                try:
                    util.write_nonblock(client, refusal(status, reason, code, message))
                except OSError:
                    self.log.debug("Could not send the refusal.")
                return
        super().handle_error(req, client, addr, exc)


def child_exit(server, worker) -> None:
    """gunicorn's hook when a web process ends: its live gauges no longer count. Only `serve`
    runs gunicorn with this module, and it always names the metrics directory first."""
    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    """gunicorn's hook once a web process has loaded Django: what is loaded by now lives as long
    as the process, so the garbage collector's full passes need not walk it again and again
    (each such pass holds the GIL, and with it every open chat stream)."""
    gc.freeze()
