"""A request as cURL, Python (requests), JavaScript (fetch) and HTTPie, to run outside the console.

The key is always the environment variable RIVYA_API_KEY, never its value; every other value has
already been through the redaction of display forms. File fields point at a path to replace.
"""

import json
import pprint
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from rivya_dashboard.workbench.redaction import redact_text

KEY_VARIABLE = "RIVYA_API_KEY"


@dataclass(frozen=True)
class RequestShape:
    """What is sent, without the key: the explorer's form and a stored call both produce one."""

    method: str
    url: str
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    form_fields: dict[str, str] = field(default_factory=dict)
    file_fields: dict[str, str] = field(default_factory=dict)
    streamed: bool = False

    @property
    def full_url(self) -> str:
        query = {name: value for name, value in self.query.items() if value not in (None, "")}
        return f"{self.url}?{urlencode(query, doseq=True)}" if query else self.url

    @property
    def has_json(self) -> bool:
        return self.json_body is not None and not self.file_fields and not self.form_fields


def _json_text(value: Any) -> str:
    return redact_text(json.dumps(value, ensure_ascii=False))


def as_curl(shape: RequestShape) -> str:
    stream = " -N" if shape.streamed else ""
    lines = [f"curl -sS{stream} -X {shape.method} {shlex.quote(redact_text(shape.full_url))}"]
    lines.append(f'-H "Authorization: Bearer ${KEY_VARIABLE}"')
    for name, value in shape.headers.items():
        lines.append(f"-H {shlex.quote(f'{name}: {redact_text(value)}')}")
    if shape.has_json:
        lines.append("-H 'Content-Type: application/json'")
        lines.append(f"--data-raw {shlex.quote(_json_text(shape.json_body))}")
    for name, value in shape.form_fields.items():
        lines.append(f"-F {shlex.quote(f'{name}={redact_text(value)}')}")
    for name, path in shape.file_fields.items():
        lines.append(f"-F {shlex.quote(f'{name}=@{path}')}")
    return " \\\n  ".join(lines)


def _python_literal(value: Any) -> str:
    return redact_text(pprint.pformat(value, sort_dicts=False, width=80))


def as_python(shape: RequestShape) -> str:
    headers = ", ".join(
        [f'"Authorization": f"Bearer {{os.environ[{KEY_VARIABLE!r}]}}"']
        + [f"{name!r}: {redact_text(value)!r}" for name, value in shape.headers.items()]
    )
    arguments = [f"    {redact_text(shape.url)!r},", f"    headers={{{headers}}},"]
    query = {name: value for name, value in shape.query.items() if value not in (None, "")}
    if query:
        arguments.append(f"    params={_python_literal(query)},")
    if shape.has_json:
        arguments.append(f"    json={_python_literal(shape.json_body)},")
    if shape.form_fields:
        arguments.append(f"    data={_python_literal(shape.form_fields)},")
    if shape.file_fields:
        files = ", ".join(
            f"{name!r}: open({path!r}, 'rb')" for name, path in shape.file_fields.items()
        )
        arguments.append(f"    files={{{files}}},")
    if shape.streamed:
        arguments.append("    stream=True,")
    arguments.append("    timeout=60,")
    lines = [
        "import os",
        "",
        "import requests",
        "",
        f"response = requests.request(\n    {shape.method!r},",
        *arguments,
        ")",
    ]
    if shape.streamed:
        lines += ["for line in response.iter_lines(decode_unicode=True):", "    print(line)"]
    else:
        lines.append("print(response.status_code, response.text)")
    return "\n".join(lines)


def as_fetch(shape: RequestShape) -> str:
    headers = [f'    "Authorization": `Bearer ${{process.env.{KEY_VARIABLE}}}`,']
    headers += [
        f"    {json.dumps(name)}: {json.dumps(redact_text(value))},"
        for name, value in shape.headers.items()
    ]
    lines = []
    body = ""
    if shape.has_json:
        headers.append('    "Content-Type": "application/json",')
        body = f"  body: JSON.stringify({_json_text(shape.json_body)}),"
    elif shape.form_fields or shape.file_fields:
        lines += ['import { openAsBlob } from "node:fs";', "", "const form = new FormData();"]
        for name, value in shape.form_fields.items():
            lines.append(f"form.append({json.dumps(name)}, {json.dumps(redact_text(value))});")
        for name, path in shape.file_fields.items():
            lines.append(f"form.append({json.dumps(name)}, await openAsBlob({json.dumps(path)}));")
        lines.append("")
        body = "  body: form,"
    lines += [
        f"const response = await fetch({json.dumps(redact_text(shape.full_url))}, {{",
        f"  method: {json.dumps(shape.method)},",
        "  headers: {",
        *headers,
        "  },",
    ]
    if body:
        lines.append(body)
    lines += ["});", "console.log(response.status, await response.text());"]
    return "\n".join(lines)


def as_httpie(shape: RequestShape) -> str:
    flags = ["--stream"] if shape.streamed else []
    if shape.form_fields or shape.file_fields:
        flags.append("--form")
    parts = ["http", *flags, shape.method, shlex.quote(redact_text(shape.url))]
    parts.append(f'"Authorization:Bearer ${KEY_VARIABLE}"')
    for name, value in shape.headers.items():
        parts.append(shlex.quote(f"{name}:{redact_text(value)}"))
    for name, value in shape.query.items():
        if value not in (None, ""):
            for item in value if isinstance(value, list) else [value]:
                parts.append(shlex.quote(f"{name}=={redact_text(str(item))}"))
    for name, value in shape.form_fields.items():
        parts.append(shlex.quote(f"{name}={redact_text(value)}"))
    for name, path in shape.file_fields.items():
        parts.append(shlex.quote(f"{name}@{path}"))
    if shape.has_json:
        parts.append(f"--raw {shlex.quote(_json_text(shape.json_body))}")
    return " \\\n  ".join([" ".join(parts[:4]), *parts[4:]])


FORMATS = (
    ("curl", "cURL", as_curl),
    ("python", "Python", as_python),
    ("fetch", "JavaScript", as_fetch),
    ("httpie", "HTTPie", as_httpie),
)


def snippets(shape: RequestShape) -> list[dict[str, str]]:
    return [{"id": name, "label": label, "text": build(shape)} for name, label, build in FORMATS]
