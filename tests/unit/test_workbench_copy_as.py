"""Redaction to display forms, and "copy as" in four languages with the key as a variable."""

import json
import shlex

from rivya_dashboard.workbench.copy_as import RequestShape, as_curl, as_fetch, as_httpie, as_python
from rivya_dashboard.workbench.redaction import redact_header, redact_headers, redact_text

KEY = "rvya_sk_" + "A1b2" * 10
SECRET = "whsec_" + "Zz9" * 10


def test_secrets_are_replaced_by_their_display_form_wherever_they_are():
    text = f'{{"signing_secret": "{SECRET}", "note": "key {KEY}."}}'
    assert redact_text(text) == '{"signing_secret": "whsec_…9Zz9", "note": "key rvya_sk_…A1b2."}'


def test_credential_headers_never_keep_their_value():
    assert redact_header("Authorization", f"Bearer {KEY}") == "Bearer rvya_sk_…A1b2"
    assert redact_header("authorization", "Bearer opaque-token-9876") == "Bearer …9876"
    assert redact_header("Cookie", "sessionid=abc") == "[redacted]"
    assert redact_headers([("X-Echo", KEY), ("Accept", "*/*")]) == [
        ("X-Echo", "rvya_sk_…A1b2"),
        ("Accept", "*/*"),
    ]


SHAPE = RequestShape(
    method="POST",
    url="https://rivya.ai/api/v1/generations",
    query={"dry": "1"},
    headers={"Idempotency-Key": "it's-1"},
    json_body={"model": "z-image", "prompt": f"say {KEY}", "params": {"n": 2, "hd": True}},
)


def test_curl_reads_the_key_from_the_environment_and_quotes_everything():
    command = as_curl(SHAPE)
    assert '-H "Authorization: Bearer $RIVYA_API_KEY"' in command
    words = shlex.split(command.replace("\\\n", " "))
    assert words[words.index("--data-raw") + 1] == json.dumps(
        {"model": "z-image", "prompt": "say rvya_sk_…A1b2", "params": {"n": 2, "hd": True}},
        ensure_ascii=False,
    )
    assert "https://rivya.ai/api/v1/generations?dry=1" in words
    assert "Idempotency-Key: it's-1" in words
    assert KEY not in command


def test_python_is_valid_code_with_the_key_from_os_environ():
    code = as_python(SHAPE)
    compile(code, "snippet.py", "exec")
    assert "os.environ['RIVYA_API_KEY']" in code and "'hd': True" in code
    assert KEY not in code


def test_fetch_and_httpie_use_the_variable_too():
    fetch = as_fetch(SHAPE)
    assert "`Bearer ${process.env.RIVYA_API_KEY}`" in fetch and "JSON.stringify(" in fetch
    httpie = as_httpie(SHAPE)
    assert '"Authorization:Bearer $RIVYA_API_KEY"' in httpie and "dry==1" in httpie
    assert KEY not in fetch + httpie


def test_multipart_and_streams():
    upload = RequestShape(
        method="POST",
        url="https://rivya.ai/api/v1/files",
        form_fields={"kind": "image"},
        file_fields={"file": "./cat.png"},
    )
    assert "-F kind=image" in as_curl(upload) and "-F file=@./cat.png" in as_curl(upload)
    assert "files={'file': open('./cat.png', 'rb')}" in as_python(upload)
    assert 'openAsBlob("./cat.png")' in as_fetch(upload)
    assert "--form" in as_httpie(upload) and "file@./cat.png" in as_httpie(upload)
    stream = RequestShape(method="POST", url="https://x/chat", json_body={}, streamed=True)
    assert as_curl(stream).startswith("curl -sS -N")
    assert "stream=True" in as_python(stream) and as_httpie(stream).startswith("http --stream")
