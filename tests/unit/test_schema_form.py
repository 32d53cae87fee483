"""The schema → form → request round trip: the same fields render and validate."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rivya_dashboard.console.schema_form import (
    GenerationForm,
    field_name,
    initial_from_params,
    is_whole_number_param,
    param_field,
)

SOUND = {
    "id": "elevenlabs-sound-effect-v2",
    "max_prompt_length": 20,
    "supported_api_inputs": ["text"],
    "params": [
        {"key": "loop", "type": "select", "default": "false", "options": ["false", "true"]},
        {
            "key": "duration_seconds",
            "type": "number",
            "default": 3,
            "min": 0.5,
            "max": 22,
            "step": 0.5,
        },
        {"key": "seed", "type": "number", "required": True, "min": 0, "max": 100, "step": 1},
        {"key": "language_code", "type": "text"},
        {"key": "dialogue", "type": "array"},
    ],
}
IMAGE = {
    "id": "nano-banana-2",
    "max_prompt_length": None,
    "supported_api_inputs": ["text", "file"],
    "file_kinds": ["image"],
    "reference_media": {"max_files": 2, "file_kinds": ["image"]},
    "params": [{"key": "model", "type": "select", "required": True, "options": ["a", "b"]}],
}
KEYS = [("1", "Team key")]


def form_for(model: dict, data: dict, **kwargs) -> GenerationForm:
    return GenerationForm(model, {"nonce": "n1", "key": "1", **data}, key_choices=KEYS, **kwargs)


def test_it_builds_one_field_per_param_with_the_right_widget():
    form = GenerationForm(SOUND, key_choices=KEYS)
    html = str(form[field_name("duration_seconds")])
    assert 'type="number"' in html and 'min="0.5"' in html and 'step="0.5"' in html
    assert "<select" in str(form[field_name("loop")])
    assert form.fields[field_name("seed")].required
    assert not form.fields[field_name("language_code")].required
    assert form[field_name("loop")].initial == "false"


def test_it_sends_selects_as_strings_and_numbers_as_numbers():
    form = form_for(
        SOUND,
        {
            "prompt": "rain",
            "p_loop": "true",
            "p_duration_seconds": "2.5",
            "p_seed": "7",
            "p_dialogue": '[{"voice": "Adam", "text": "hi"}]',
        },
    )
    assert form.is_valid(), form.errors
    assert form.params() == {
        "loop": "true",
        "duration_seconds": 2.5,
        "seed": 7,
        "dialogue": [{"voice": "Adam", "text": "hi"}],
    }


def test_it_omits_optional_params_left_empty():
    form = form_for(SOUND, {"prompt": "rain", "p_seed": "3", "p_loop": ""})
    assert form.is_valid(), form.errors
    assert form.params() == {"seed": 3}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"p_loop": "maybe"}, "p_loop", "Select a valid choice"),
        ({"p_duration_seconds": "30"}, "p_duration_seconds", "less than or equal to 22"),
        ({"p_duration_seconds": "0.7"}, "p_duration_seconds", "multiple of"),
        ({"p_seed": ""}, "p_seed", "required"),
        ({"p_dialogue": "[oops"}, "p_dialogue", "Write a JSON value"),
        (
            {"prompt": "x" * 21},
            "prompt",
            "Shorten the prompt to 20 characters or fewer (it has 21)",
        ),
    ],
)
def test_it_refuses_values_outside_the_schema(data, field, message):
    form = form_for(SOUND, {"prompt": "rain", "p_seed": "1", **data})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


def test_prompt_limit_is_exposed_for_the_live_counter():
    html = str(GenerationForm(SOUND, key_choices=KEYS)["prompt"])
    assert 'data-max-length="20"' in html
    assert "maxlength" not in html


def test_param_named_like_a_form_field_does_not_collide():
    form = form_for(IMAGE, {"prompt": "cat", "p_model": "b"})
    assert form.is_valid(), form.errors
    assert form.params() == {"model": "b"}
    assert form.cleaned_data["key"] == "1"


def test_reference_files_follow_the_model_rules():
    choices = [("1", "a.png"), ("2", "b.png"), ("3", "c.wav")]
    kinds = {"1": "image", "2": "image", "3": "audio"}
    ok = form_for(
        IMAGE,
        {"prompt": "cat", "p_model": "a", "reference_files": ["1", "2"]},
        reference_choices=choices,
        reference_kinds=kinds,
    )
    assert ok.is_valid(), ok.errors
    assert ok.cleaned_data["reference_files"] == ["1", "2"]
    wrong_kind = form_for(
        IMAGE,
        {"prompt": "cat", "p_model": "a", "reference_files": ["3"]},
        reference_choices=choices,
        reference_kinds=kinds,
    )
    assert "only image files" in " ".join(wrong_kind.errors["reference_files"])
    too_many = form_for(
        IMAGE,
        {"prompt": "c", "p_model": "a", "reference_files": ["1", "2", "3"]},
        reference_choices=choices,
        reference_kinds=kinds,
    )
    assert "at most 2 files" in " ".join(too_many.errors["reference_files"])


def test_text_only_models_have_no_reference_field():
    assert "reference_files" not in GenerationForm(SOUND, key_choices=KEYS).fields


def test_unknown_key_is_refused():
    form = GenerationForm(
        SOUND, {"nonce": "n", "key": "9", "prompt": "x", "p_seed": "1"}, key_choices=KEYS
    )
    assert not form.is_valid()
    assert "key" in form.errors


def test_edit_and_run_prefills_from_params():
    initial = initial_from_params({"loop": "true", "seed": 4, "referenceMediaItems": [{}]})
    assert initial == {"p_loop": "true", "p_seed": 4}


def test_whole_number_params_use_integer_fields():
    assert is_whole_number_param({"min": 1, "max": 300, "step": 1})
    assert not is_whole_number_param({"min": 0, "max": 1, "step": 0.05})
    assert not is_whole_number_param({"min": 0, "max": 1})


@given(st.integers(min_value=-10, max_value=60), st.sampled_from(["0.5", "1", "0.05"]))
def test_number_fields_accept_exactly_the_values_in_range_and_on_step(tenths, step):
    param = {"key": "v", "type": "number", "min": 0, "max": 5, "step": float(step)}
    value = Decimal(tenths) / 10
    field = param_field(param)
    on_step = (value - 0) % Decimal(step) == 0
    accepted = True
    try:
        field.clean(str(value))
    except Exception:
        accepted = False
    assert accepted == (0 <= value <= 5 and on_step)


def test_a_step_that_is_not_a_number_is_left_out_not_a_crash():
    field = param_field({"key": "v", "type": "number", "min": 1, "step": "any"})
    assert field.help_text == "At least 1."
    assert field.clean("1.25") == Decimal("1.25")


def test_json_nested_past_the_parser_depth_is_a_field_error():
    form = form_for(SOUND, {"prompt": "p", "p_seed": "1", "p_dialogue": "[" * 100_000})
    assert not form.is_valid()
    assert "nested too deeply" in form.errors[field_name("dialogue")][0]


def test_json_schema_properties_become_the_same_fields_as_model_params():
    from django import forms as django_forms

    from rivya_dashboard.console.schema_form import json_schema_param

    def build(schema, required=False):
        return param_field(json_schema_param("x", schema, required=required))

    assert isinstance(build({"type": "string", "enum": ["a", "b"]}), django_forms.ChoiceField)
    whole = build({"type": "integer", "minimum": 1, "maximum": 5, "default": 2})
    assert isinstance(whole, django_forms.IntegerField) and whole.initial == 2
    assert whole.max_value == 5
    flag = build({"type": ["boolean", "null"]})
    assert flag.clean("true") is True and flag.clean("") is None
    assert isinstance(build({"type": "string", "format": "binary"}), django_forms.FileField)
    assert build({"type": "string", "maxLength": 3}).max_length == 3
    picks = build({"type": "array", "items": {"enum": ["x", "y"]}}, required=True)
    assert picks.clean(["x"]) == ["x"]
    assert build({"type": "object"}).clean('{"a": 1}') == {"a": 1}
