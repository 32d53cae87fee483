"""Reading an OpenAPI document leniently, and the grant action each operation needs."""

import pytest

from rivya_dashboard.vault.models import Action
from rivya_dashboard.workbench.operation_grants import needed_actions, needed_scopes
from rivya_dashboard.workbench.operations import Operation, read_catalogue
from tests.workbench_fake import DOCUMENT


def operation(method: str, path: str, **extra) -> Operation:
    return Operation("op", method, path, "", "", **extra)


def test_it_lists_every_readable_operation_and_says_what_it_could_not_read():
    catalogue = read_catalogue(DOCUMENT)
    assert [op.operation_id for op in catalogue.operations] == [
        "listGadgets",
        "buildGadget",
        "readNote",
        "brokenBody",
    ]
    assert [tag for tag, _ in catalogue.by_tag()] == ["gadgets", "notes", "broken"]
    assert any("/ignored" in problem for problem in catalogue.problems)
    assert any("#/components/nope" in problem for problem in catalogue.problems)
    build = catalogue.find("buildGadget")
    assert build.body_schema["properties"]["size"]["properties"]["width"]["minimum"] == 1
    assert build.scopes == ("gadgets:create",) and not build.public


@pytest.mark.parametrize(
    "document", [None, [], "text", {"paths": "no"}, {"paths": {"/x": {"get": 3}}}]
)
def test_a_document_of_any_shape_never_raises(document):
    catalogue = read_catalogue(document)
    assert catalogue.operations == [] and catalogue.problems


def test_a_schema_that_refers_to_itself_is_cut_not_followed_for_ever():
    document = {
        "paths": {
            "/tree": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Node": {
                    "type": "object",
                    "properties": {"child": {"$ref": "#/components/schemas/Node"}},
                }
            }
        },
    }
    body = read_catalogue(document).operations[0].body_schema
    assert body["properties"]["child"]["properties"]["child"]["type"] == "object"


def test_all_of_parts_are_merged_and_path_parameters_are_shared():
    document = {
        "paths": {
            "/things/{id}": {
                "parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}],
                "patch": {
                    "operationId": "patchThing",
                    "parameters": [{"name": "Idempotency-Key", "in": "header"}],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "allOf": [
                                        {
                                            "properties": {"a": {"type": "string"}},
                                            "required": ["a"],
                                        },
                                        {"properties": {"b": {"type": "integer"}}},
                                    ]
                                }
                            }
                        }
                    },
                },
            }
        }
    }
    patch = read_catalogue(document).find("patchThing")
    assert set(patch.body_schema["properties"]) == {"a", "b"} and patch.body_schema["required"] == [
        "a"
    ]
    assert [(p.name, p.location, p.required) for p in patch.parameters] == [
        ("id", "path", True),
        ("Idempotency-Key", "header", False),
    ]
    assert patch.idempotent and patch.tag == "things"


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("POST", "/generations", ("generations:create",)),
        ("GET", "/generations/{taskId}", ("generations:read",)),
        ("POST", "/files", ("files:create",)),
        ("GET", "/credits", ("credits:read",)),
        ("POST", "/chat/completions/stream", ("chat:create",)),
        ("DELETE", "/webhooks/{endpointId}", ("webhooks:manage",)),
        ("GET", "/webhook-events", ("webhooks:manage",)),
        ("GET", "/unknown-thing", ()),
    ],
)
def test_scopes_follow_the_contracts_naming_when_the_document_names_none(method, path, scopes):
    assert needed_scopes(operation(method, path)) == scopes


def test_actions_are_the_narrowest_that_carry_the_scope():
    assert needed_actions(operation("GET", "/generations/{id}")) == [[Action.READ_HISTORY]]
    assert needed_actions(operation("POST", "/generations")) == [[Action.GENERATE]]
    assert needed_actions(operation("GET", "/models", public=True)) == [[Action.BROWSE]]
    assert needed_actions(operation("GET", "/x", scopes=("things:do",))) == [[]]
