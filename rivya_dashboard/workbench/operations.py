"""The operations an OpenAPI document declares, read leniently.

Nothing about Rivya's operations is written here: a new operation in the document appears in the
explorer. A document that is partly unreadable still yields every operation that can be read, and
`Catalogue.problems` says, in the member's words, what could not be.
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

METHODS = ("get", "post", "put", "patch", "delete")
LOCATIONS = ("path", "query", "header")
JSON_CONTENT = "application/json"
MULTIPART_CONTENT = "multipart/form-data"
EVENT_STREAM = "text/event-stream"
IDEMPOTENCY_HEADER = "idempotency-key"
# A self-referencing schema is cut here instead of recursing for ever.
MAX_DEPTH = 8


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    schema: dict
    description: str = ""


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    summary: str
    tag: str
    parameters: tuple[Parameter, ...] = ()
    body_schema: dict | None = None
    body_content: str = ""
    body_required: bool = False
    streamed: bool = False
    public: bool = False
    scopes: tuple[str, ...] = ()

    @property
    def idempotent(self) -> bool:
        return any(
            p.location == "header" and p.name.lower() == IDEMPOTENCY_HEADER for p in self.parameters
        )

    @property
    def multipart(self) -> bool:
        return self.body_content == MULTIPART_CONTENT


@dataclass
class Catalogue:
    operations: list[Operation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    title: str = ""
    version: str = ""

    def find(self, operation_id: str | None) -> Operation | None:
        return next((op for op in self.operations if op.operation_id == operation_id), None)

    def by_tag(self) -> list[tuple[str, list[Operation]]]:
        groups: OrderedDict[str, list[Operation]] = OrderedDict()
        for operation in self.operations:
            groups.setdefault(operation.tag, []).append(operation)
        return list(groups.items())


class _Reader:
    """Resolves local $refs and collects what could not be read instead of failing."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            self.problem(_("Cannot follow the reference %(ref)s (only local ones).") % {"ref": ref})
            return None
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                self.problem(_("The reference %(ref)s points nowhere.") % {"ref": ref})
                return None
            node = node[part]
        return node

    def schema(self, schema: Any, depth: int = 0) -> dict:
        """The schema with its local $refs (and allOf) replaced by their targets, to MAX_DEPTH."""
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return {}
        if isinstance(schema.get("$ref"), str):
            target = self.pointer(schema["$ref"])
            extra = {name: value for name, value in schema.items() if name != "$ref"}
            return {**self.schema(target, depth + 1), **extra}
        resolved = dict(schema)
        if isinstance(schema.get("properties"), dict):
            resolved["properties"] = {
                name: self.schema(value, depth + 1) for name, value in schema["properties"].items()
            }
        if isinstance(schema.get("items"), dict):
            resolved["items"] = self.schema(schema["items"], depth + 1)
        if isinstance(schema.get("allOf"), list):
            for part in schema["allOf"]:
                merge_schema(resolved, self.schema(part, depth + 1))
            del resolved["allOf"]
        return resolved

    def node(self, value: Any) -> dict:
        if isinstance(value, dict) and isinstance(value.get("$ref"), str):
            value = self.pointer(value["$ref"])
        return value if isinstance(value, dict) else {}


def merge_schema(into: dict, part: dict) -> None:
    properties = {**(into.get("properties") or {}), **(part.get("properties") or {})}
    required = [*(into.get("required") or []), *(part.get("required") or [])]
    into.update({name: value for name, value in part.items() if name not in into})
    if properties:
        into["properties"] = properties
    if required:
        into["required"] = list(dict.fromkeys(required))


def read_catalogue(document: Any) -> Catalogue:
    if not isinstance(document, dict):
        return Catalogue(problems=[_("The document is not a JSON object; no operation is listed.")])
    reader = _Reader(document)
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    catalogue = Catalogue(
        title=str(info.get("title") or ""), version=str(info.get("version") or "")
    )
    paths = document.get("paths")
    if not isinstance(paths, dict):
        reader.problem(_("The document has no “paths”; no operation is listed."))
        paths = {}
    default_security = document.get("security")
    seen: set[str] = set()
    for path, item in paths.items():
        if not isinstance(item, dict) or not str(path).startswith("/"):
            reader.problem(_("The path %(path)s could not be read.") % {"path": path})
            continue
        shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
        for method in METHODS:
            if method not in item:
                continue
            operation = _operation(
                reader, str(path), method, item[method], shared, default_security
            )
            if operation is None:
                continue
            if operation.operation_id in seen:
                reader.problem(
                    _("Two operations share the id %(id)s; the second is left out.")
                    % {"id": operation.operation_id}
                )
                continue
            seen.add(operation.operation_id)
            catalogue.operations.append(operation)
    catalogue.problems = reader.problems
    return catalogue


def _operation(
    reader: _Reader, path: str, method: str, raw: Any, shared: list, default_security: Any
) -> Operation | None:
    name = f"{method.upper()} {path}"
    if not isinstance(raw, dict):
        reader.problem(_("The operation %(name)s could not be read.") % {"name": name})
        return None
    tags = raw.get("tags") if isinstance(raw.get("tags"), list) else []
    body_schema, body_content, body_required = _body(reader, name, raw.get("requestBody"))
    security = raw.get("security", default_security)
    public, scopes = _security(security)
    return Operation(
        operation_id=str(raw.get("operationId") or name),
        method=method.upper(),
        path=path,
        summary=str(raw.get("summary") or raw.get("description") or ""),
        tag=str(tags[0]) if tags else path.strip("/").split("/")[0],
        parameters=_parameters(reader, name, [*shared, *(raw.get("parameters") or [])]),
        body_schema=body_schema,
        body_content=body_content,
        body_required=body_required,
        streamed=_streams(reader, raw.get("responses")),
        public=public,
        scopes=scopes,
    )


def _parameters(reader: _Reader, name: str, raw: list) -> tuple[Parameter, ...]:
    found: dict[tuple[str, str], Parameter] = {}
    for entry in raw if isinstance(raw, list) else []:
        entry = reader.node(entry)
        location, param_name = entry.get("in"), entry.get("name")
        if location not in LOCATIONS or not isinstance(param_name, str) or not param_name:
            if location != "cookie":
                reader.problem(
                    _("A parameter of %(name)s could not be read; use the raw editor.")
                    % {"name": name}
                )
            continue
        # An operation's own parameter replaces the path item's one of the same name and place.
        found[(location, param_name)] = Parameter(
            name=param_name,
            location=location,
            required=bool(entry.get("required")) or location == "path",
            schema=reader.schema(entry.get("schema")),
            description=str(entry.get("description") or ""),
        )
    return tuple(found.values())


def _body(reader: _Reader, name: str, raw: Any) -> tuple[dict | None, str, bool]:
    body = reader.node(raw)
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    if not content:
        return None, "", False
    chosen = next(
        (kind for kind in (JSON_CONTENT, MULTIPART_CONTENT) if kind in content), next(iter(content))
    )
    media = content[chosen] if isinstance(content[chosen], dict) else {}
    schema = reader.schema(media.get("schema"))
    if not schema:
        reader.problem(
            _("The body of %(name)s has no readable schema; write it in the raw editor.")
            % {"name": name}
        )
    return schema, str(chosen), bool(body.get("required"))


def _streams(reader: _Reader, responses: Any) -> bool:
    if not isinstance(responses, dict):
        return False
    for status, response in responses.items():
        if str(status).startswith("2"):
            content = reader.node(response).get("content")
            if isinstance(content, dict) and EVENT_STREAM in content:
                return True
    return False


def _security(security: Any) -> tuple[bool, tuple[str, ...]]:
    """(whether no key is needed, the scopes the document names)."""
    if not isinstance(security, list):
        return False, ()
    public = any(requirement == {} for requirement in security)
    scopes = [
        str(scope)
        for requirement in security
        if isinstance(requirement, dict)
        for needed in requirement.values()
        if isinstance(needed, list)
        for scope in needed
    ]
    return public, tuple(dict.fromkeys(scopes))
