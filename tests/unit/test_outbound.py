"""The one door out: who may import an HTTP library, and every policy of outbound's sessions,
against a real server on 127.0.0.1."""

import ast
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rivya_dashboard import __version__, outbound
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import RivyaError

PACKAGE = Path(outbound.__file__).resolve().parent
HTTP_LIBRARIES = ("requests", "urllib3", "http.client", "urllib.request")
# rivya/ imports nothing of the project, so it cannot import outbound: it names requests' and
# urllib3's exception classes and types, and sends only on the session it is given.
TYPES_ONLY = {PACKAGE / "rivya" / "client.py", PACKAGE / "rivya" / "errors.py"}
SENDING_NAMES = {"Session", "request", "get", "post", "put", "patch", "delete", "head", "options"}
SENDING_NAMES |= {"HTTPAdapter", "PoolManager", "HTTPConnection", "HTTPSConnection", "adapters"}


def http_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found += [
            n for n in names if any(n == lib or n.startswith(lib + ".") for lib in HTTP_LIBRARIES)
        ]
    return found


def annotation_nodes(tree: ast.AST) -> set[int]:
    """Ids of nodes inside type annotations, where requests.Session names a type only."""
    notes = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            notes.append(node.annotation)
        if isinstance(node, ast.FunctionDef) and node.returns is not None:
            notes.append(node.returns)
    return {id(inner) for note in notes for inner in ast.walk(note)}


def sending_uses(tree: ast.AST) -> list[str]:
    """requests.Session(), requests.get, urllib3.PoolManager...: anything that could send."""
    typed = annotation_nodes(tree)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            uses += [alias.name for alias in node.names if alias.name in SENDING_NAMES]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("requests", "urllib3")
            and node.attr in SENDING_NAMES
            and id(node) not in typed
        ):
            uses.append(f"{node.value.id}.{node.attr}")
    return uses


def test_no_module_outside_outbound_imports_an_http_library_to_send() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "outbound.py" or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = http_imports(tree)
        if imported and path not in TYPES_ONLY:
            offenders[str(path.relative_to(PACKAGE))] = imported
        elif imported and sending_uses(tree):
            offenders[str(path.relative_to(PACKAGE))] = sending_uses(tree)
    assert offenders == {}


def test_the_scan_catches_a_module_that_sends_on_its_own() -> None:
    tree = ast.parse("import requests\nrequests.Session().get('https://x')\n")
    assert http_imports(tree) == ["requests"]
    assert http_imports(ast.parse("from http import HTTPStatus\n")) == []
    assert "requests.Session" in sending_uses(tree)
    assert "urllib3.util" in http_imports(ast.parse("from urllib3.util import parse_url\n"))
    assert http_imports(ast.parse("import http.client as h\n")) == ["http.client"]
    assert http_imports(ast.parse("from http import client\n")) == ["http.client"]


# --- Policies, against a server on 127.0.0.1 -------------------------------------------------


class Server:
    """Answers by path: /redirect (302), /cookie (Set-Cookie), /slow, anything else echoes the
    request line and headers as JSON. Keeps connections alive, and counts them."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.clients: set[tuple[str, int]] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                server.hits.append(self.path)
                server.clients.add(self.client_address)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path.endswith("/slow"):
                    time.sleep(0.6)
                body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
                self.send_response(302 if self.path.endswith("/redirect") else 200)
                if self.path.endswith("/redirect"):
                    self.send_header("Location", "/followed")
                if self.path.endswith("/cookie"):
                    self.send_header("Set-Cookie", "sid=team-a; Path=/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.fixture(autouse=True)
def fresh_sessions() -> Iterator[None]:
    outbound.reset_sessions()
    yield
    outbound.reset_sessions()


@pytest.fixture
def local(settings) -> outbound.Session:
    """The guarded session, with loopback opened (the test server lives there)."""
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    return outbound.guarded_session()


def test_a_redirect_is_answered_not_followed_even_when_asked(server, local) -> None:
    response = local.get(server.origin + "/redirect", allow_redirects=True)
    assert response.status_code == 302
    assert server.hits == ["/redirect"]


def test_a_cookie_a_server_sets_is_never_sent_back(server, local) -> None:
    local.get(server.origin + "/cookie")
    echoed = local.get(server.origin + "/echo").json()
    assert len(local.cookies) == 0
    assert "Cookie" not in echoed["headers"]


def test_proxy_variables_in_the_environment_are_ignored(server, local, monkeypatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert local.get(server.origin + "/echo").json()["path"] == "/echo"


def test_a_configured_proxy_is_used_and_the_target_name_is_checked(
    server, settings, monkeypatch
) -> None:
    settings.RIVYA_OUTBOUND_PROXY = server.origin
    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))]
    private = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80))]
    real = socket.getaddrinfo
    names = {"api.example.test": public, "internal.example.test": private}
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *a, **k: names.get(host) or real(host, *a, **k)
    )
    session = outbound.guarded_session(allow_local=False)
    # The proxy (our server) gets the absolute URL; the guard checked the target, not the proxy.
    assert session.get("http://api.example.test/v1").json()["path"] == "http://api.example.test/v1"
    with pytest.raises(outbound.Refused, match="private or reserved address"):
        session.get("http://internal.example.test/v1")
    assert server.hits == ["http://api.example.test/v1"]


def test_every_request_gets_a_timeout(server, local, monkeypatch) -> None:
    monkeypatch.setattr(outbound, "DEFAULT_TIMEOUT", (1.0, 0.2))
    with pytest.raises(outbound.Timeout):
        local.get(server.origin + "/slow")
    assert local.get(server.origin + "/slow", timeout=3).status_code == 200


def test_every_session_sends_the_one_user_agent(server, settings) -> None:
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    settings.RIVYA_LISTEN_URL = server.origin
    sessions = [
        outbound.guarded_session(),
        outbound.guarded_session(allow_local=True),
        outbound.sandbox_session(),
        outbound.api_session(server.origin + "/api/v1"),
        outbound.api_session(server.origin + "/sandbox/api/v1"),
    ]
    for session in sessions:
        echoed = session.get(server.origin + "/sandbox/api/v1/echo").json()
        assert echoed["headers"]["User-Agent"] == f"RivyaConsole/{__version__}"


def test_the_guard_refuses_private_addresses_for_real_keys(server, settings) -> None:
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = False
    client = RivyaClient(
        server.origin + "/api/v1",
        "rvya_sk_test",
        session=outbound.api_session(server.origin + "/api/v1"),
        max_retries=0,
    )
    with pytest.raises(RivyaError, match=r"private address 127\.0\.0\.1"):
        client.get_credits()
    assert server.hits == []


def test_the_local_session_never_reaches_link_local_multicast_or_unspecified() -> None:
    class Peer:
        def __init__(self, address: str) -> None:
            self.address = address
            self.closed = False

        def getpeername(self) -> tuple[str, int]:
            return (self.address, 80)

        def close(self) -> None:
            self.closed = True

    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.4", "fd00::1"):
        outbound.check_peer(Peer(address), "host", True)
    refused = ("169.254.169.254", "0.0.0.0", "224.0.0.1", "240.0.0.1", "::", "fe80::1")  # noqa: S104
    for address in refused:
        peer = Peer(address)
        with pytest.raises(outbound.BlockedAddress):
            outbound.check_peer(peer, "host", True)
        assert peer.closed


def test_the_sandbox_session_reaches_only_this_consoles_own_sandbox(server, settings) -> None:
    settings.RIVYA_LISTEN_URL = server.origin
    session = outbound.sandbox_session()
    assert session.get(server.origin + "/sandbox/api/v1/credits").status_code == 200
    assert session.get(server.origin + "/sandbox/api/media/a.png").status_code == 200
    elsewhere = [
        server.origin + "/admin/",
        server.origin + "/sandbox/api/../../admin/",
        server.origin + "/sandbox/api/%2e%2e/%2e%2e/admin/",
        "http://127.0.0.1:9/sandbox/api/v1/credits",
        server.origin.replace("127.0.0.1", "localhost") + "/sandbox/api/v1/credits",
    ]
    for url in elsewhere:
        with pytest.raises(outbound.Refused, match="own sandbox"):
            session.get(url)
    assert server.hits == ["/sandbox/api/v1/credits", "/sandbox/api/media/a.png"]


def test_without_a_known_address_no_url_is_the_own_sandbox(settings) -> None:
    settings.RIVYA_LISTEN_URL = ""
    settings.RIVYA_PUBLIC_URL = ""
    assert outbound.own_sandbox_url() == ""
    assert not outbound.is_own_sandbox("http://testserver/sandbox/api/v1/credits")
    settings.RIVYA_PUBLIC_URL = "https://console.example.test"
    assert outbound.own_sandbox_url() == "https://console.example.test/sandbox/api/v1"
    settings.RIVYA_SANDBOX = False
    assert outbound.own_sandbox_url() == ""


def test_result_urls_use_the_sandbox_session_only_for_own_sandbox_media(settings) -> None:
    settings.RIVYA_LISTEN_URL = "http://127.0.0.1:8000"
    own = "http://127.0.0.1:8000/sandbox/api/media/task_1.png"
    assert outbound.session_for_url(own) is outbound.sandbox_session()
    for url in ("http://127.0.0.1:6379/sandbox/api/media/x.png", "https://cdn.example/a.png"):
        assert outbound.session_for_url(url) is outbound.guarded_session()


def test_alerts_reuse_one_pooled_connection(server, local, settings) -> None:
    for _ in range(5):
        outbound.guarded_session().post(server.origin + "/alert", json={"n": 1})
    assert len(server.hits) == 5
    assert len(server.clients) == 1


# --- Exchange listeners ----------------------------------------------------------------------


def test_listeners_see_every_api_key_call_and_nothing_else(server, settings) -> None:
    settings.RIVYA_LISTEN_URL = server.origin
    seen = []

    def listen(request, response, elapsed) -> None:
        seen.append((request.method, request.url, response.status_code, elapsed))

    def broken(request, response, elapsed) -> None:
        raise RuntimeError("a listener's bug")

    outbound.add_exchange_listener(broken)
    outbound.add_exchange_listener(listen)
    try:
        base = server.origin + "/sandbox/api/v1"
        client = RivyaClient(base, "rvya_sk_test", session=outbound.api_session(base))
        client.get_credits()
        outbound.sandbox_session().get(server.origin + "/sandbox/api/media/a.png")
    finally:
        outbound.remove_exchange_listener(broken)
        outbound.remove_exchange_listener(listen)
    client.get_credits()
    ((method, url, status, elapsed),) = seen
    assert (method, url, status) == ("GET", base + "/credits", 200)
    assert 0 <= elapsed < 5
