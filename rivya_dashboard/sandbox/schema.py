"""A small JSON Schema checker for the subset the sandbox's request schemas use.

The same schema dicts go verbatim into openapi.json, so what the document promises is exactly
what the views enforce. Supported keywords: type, properties, required, additionalProperties
(false), enum, const, minLength, maxLength, minimum, maximum, minItems, maxItems, items.
`format` and `pattern` document rules that a handler enforces with a message naming the rule
(a webhook URL's scheme, an id's prefix); this checker leaves them to it.
"""

from typing import Any

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


class SchemaViolation(Exception):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


def is_type(value: Any, name: str) -> bool:
    # bool is an int subclass in Python but never a JSON number.
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, JSON_TYPES[name])


def check(value: Any, schema: dict, field: str = "") -> None:
    """Raise SchemaViolation naming the first field that breaks `schema`."""
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(is_type(value, name) for name in names):
            raise SchemaViolation(field, f"must be of type {' or '.join(names)}")
    if "const" in schema and value != schema["const"]:
        raise SchemaViolation(field, f"must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(str(option) for option in schema["enum"])
        raise SchemaViolation(field, f"must be one of: {options}")
    if isinstance(value, str):
        check_string(value, schema, field)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        check_number(value, schema, field)
    elif isinstance(value, list):
        check_array(value, schema, field)
    elif isinstance(value, dict):
        check_object(value, schema, field)


def check_string(value: str, schema: dict, field: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise SchemaViolation(field, f"must be at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaViolation(field, f"must be at most {schema['maxLength']} characters")


def check_number(value: float, schema: dict, field: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise SchemaViolation(field, f"must be at least {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise SchemaViolation(field, f"must be at most {schema['maximum']}")


def check_array(value: list, schema: dict, field: str) -> None:
    if len(value) < schema.get("minItems", 0):
        raise SchemaViolation(field, f"must have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaViolation(field, f"must have at most {schema['maxItems']} items")
    if "items" in schema:
        for index, item in enumerate(value):
            check(item, schema["items"], f"{field}[{index}]")


def check_object(value: dict, schema: dict, field: str) -> None:
    prefix = f"{field}." if field else ""
    for name in schema.get("required", ()):
        if name not in value:
            raise SchemaViolation(f"{prefix}{name}", "is required")
    properties = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(properties))
        if unknown:
            raise SchemaViolation(f"{prefix}{unknown[0]}", "is not a known field")
    for name, sub_schema in properties.items():
        if name in value:
            check(value[name], sub_schema, f"{prefix}{name}")
