"""Custom base URLs: a table of forgery attempts, and the connect-time and redirect guards."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from rivya_dashboard import outbound
from rivya_dashboard.rivya.client import RivyaClient
from rivya_dashboard.rivya.errors import RivyaError

_real_getaddrinfo = socket.getaddrinfo

# Names resolve only through this table, so no test depends on real DNS.
FAKE_DNS = {
    "api.example.test": ["93.184.216.34"],
    "localhost": ["127.0.0.1", "::1"],
    "localhost.": ["127.0.0.1"],
    "internal.example.test": ["10.1.2.3"],
    "mixed.example.test": ["93.184.216.34", "127.0.0.1"],
    "metadata.google.internal": ["169.254.169.254"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "v6private.example.test": ["fd00::5"],
    "mapped.example.test": ["::ffff:10.0.0.1"],
}


def fake_getaddrinfo(host, port, *args, **kwargs):
    if host in FAKE_DNS:
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in FAKE_DNS[host]
        ]
    return _real_getaddrinfo(host, port, *args, flags=socket.AI_NUMERICHOST, **kwargs)


@pytest.fixture(autouse=True)
def dns(monkeypatch, settings):
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = False
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


BYPASS_ATTEMPTS = [
    "http://127.0.0.1/api/v1",
    "http://localhost:8000/api/v1",
    "http://localhost./api/v1",
    "http://2130706433/api/v1",  # decimal 127.0.0.1
    "http://0x7f000001/api/v1",  # hex
    "http://017700000001/api/v1",  # octal
    "http://0177.0.0.1/api/v1",  # octal first octet
    "http://0x7f.1/api/v1",
    "http://127.1/api/v1",
    "http://0/api/v1",
    "http://0.0.0.0:8000/api/v1",
    "http://[::1]/api/v1",
    "http://[::]/api/v1",
    "http://[::ffff:127.0.0.1]/api/v1",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/api/v1",
    "http://[::ffff:a9fe:a9fe]/latest",  # mapped 169.254.169.254
    "http://[2002:7f00:1::]/api/v1",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::7f00:1]/api/v1",  # NAT64 wrapping 127.0.0.1
    "http://[fe80::1%25eth0]/api/v1",
    "http://[fc00::1]/api/v1",
    "http://[fec0::1]/api/v1",  # deprecated site-local, which is_global lets through
    "http://169.254.169.254/latest/meta-data",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://10.0.0.5/api/v1",
    "http://172.16.0.1/api/v1",
    "http://192.168.1.1/api/v1",
    "http://100.64.0.1/api/v1",
    "http://224.0.0.1/api/v1",
    "http://internal.example.test/api/v1",  # name resolving to a private range
    "http://mixed.example.test/api/v1",  # one public, one loopback address
    "http://127.0.0.1.nip.io/api/v1",
    "http://v6private.example.test/api/v1",
    "http://mapped.example.test/api/v1",
    "https://user:pass@api.example.test/api/v1",  # credentials
    "https://api.example.test@127.0.0.1/api/v1",
    "https://:@api.example.test/api/v1",
    "ftp://api.example.test/api/v1",
    "file:///etc/passwd",
    "gopher://api.example.test:70/",
    "javascript:alert(1)",
    "//api.example.test/api/v1",
    "http://api.example.test:99999/api/v1",
    "http://%31%32%37.0.0.1/api/v1",
    "http://api.example.test/api/v1?redirect=http://127.0.0.1",
    "http://unknown-name.example.test/api/v1",
]


@pytest.mark.parametrize("url", BYPASS_ATTEMPTS)
def test_it_rejects_forgery_attempts(url):
    with pytest.raises(outbound.UnsafeURL):
        outbound.check_url(url)


def test_a_public_url_passes_and_loses_its_trailing_slash():
    assert (
        outbound.check_url("https://api.example.test/api/v1/") == "https://api.example.test/api/v1"
    )
    assert (
        outbound.check_url("http://93.184.216.34:8080/api/v1") == "http://93.184.216.34:8080/api/v1"
    )


def test_private_addresses_need_the_setting_and_metadata_stays_closed(settings):
    with pytest.raises(outbound.UnsafeURL):
        outbound.check_url("http://127.0.0.1:8000/api/v1")
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    assert outbound.check_url("http://127.0.0.1:8000/api/v1")
    assert outbound.check_url("http://internal.example.test/api/v1")
    for url in ("http://169.254.169.254/", "http://[::ffff:a9fe:a9fe]/", "http://0.0.0.0/"):
        with pytest.raises(outbound.UnsafeURL):
            outbound.check_url(url)


def test_the_message_says_what_to_fix():
    with pytest.raises(outbound.UnsafeURL, match="user name and password"):
        outbound.check_url("https://user:pass@api.example.test/api/v1")
    with pytest.raises(outbound.UnsafeURL, match="private or reserved address"):
        outbound.check_url("http://internal.example.test/api/v1")
    with pytest.raises(outbound.UnsafeURL, match="four decimal numbers"):
        outbound.check_url("http://2130706433/")


class Handler(BaseHTTPRequestHandler):
    hits: list[str] = []
    redirect_to = ""

    def do_GET(self) -> None:
        Handler.hits.append(self.path)
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"current_credits": 5}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Quiet."""


@pytest.fixture
def local_server():
    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.hits, Handler.redirect_to = [], ""
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_connect_time_guard_refuses_a_loopback_peer(local_server, settings):
    session = outbound.guarded_session()
    with pytest.raises(requests.ConnectionError, match=r"private address 127\.0\.0\.1"):
        session.get(f"http://127.0.0.1:{local_server}/credits", timeout=2)
    assert Handler.hits == []
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    assert session.get(f"http://127.0.0.1:{local_server}/credits", timeout=2).status_code == 200


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused(local_server, monkeypatch):
    answers = iter([["93.184.216.34"]])

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example.test":
            ips = next(answers, ["127.0.0.1"])
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]
        return fake_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = outbound.check_url(f"http://rebind.example.test:{local_server}/api/v1")
    client = RivyaClient(url, "rvya_sk_test", session=outbound.guarded_session(), max_retries=0)
    with pytest.raises(RivyaError):
        client.get_credits()
    assert Handler.hits == []


def test_a_redirect_to_loopback_is_not_followed(local_server, settings):
    settings.RIVYA_ALLOW_PRIVATE_BASE_URLS = True
    Handler.redirect_to = f"http://127.0.0.1:{local_server}/secret"
    client = RivyaClient(
        f"http://127.0.0.1:{local_server}/api/v1",
        "rvya_sk_test",
        session=outbound.guarded_session(),
        max_retries=0,
    )
    with pytest.raises(RivyaError):
        client.get_credits()
    assert Handler.hits == ["/api/v1/credits"]
