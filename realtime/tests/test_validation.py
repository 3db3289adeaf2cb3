"""
realtime.validation: a batch validated with one serializer answers each item as ``validate`` would;
the strict fields take only the JSON types docs/protocol.md gives; ``invalid`` details are plain JSON.
"""

import orjson
import pytest
from django.http import QueryDict
from rest_framework import serializers

from realtime.errors import Invalid
from realtime.validation import (
    IdField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    TextField,
    validate,
    validate_each,
)


class NoteIn(serializers.Serializer):
    note_id = IdField()
    text = serializers.CharField(max_length=5)

    def validate(self, attrs):
        if attrs["text"] == "nope":
            raise serializers.ValidationError({"text": ["Not that one."]})
        return attrs


ITEMS = [
    {"note_id": 1, "text": "hi"},
    {"note_id": 0, "text": "far too long"},
    {"note_id": 2, "text": "nope"},
    ["not", "an", "object"],
    {"note_id": 2**63, "text": "\x00"},
    {"note_id": "3", "text": "ok"},
]


def outcome_of_validate(data):
    try:
        return validate(NoteIn, data)
    except Invalid as exc:
        return exc


def test_each_item_gets_the_data_or_the_error_that_validate_gives_it_alone():
    batch = validate_each(NoteIn, ITEMS)

    assert len(batch) == len(ITEMS)
    for item, got in zip(ITEMS, batch, strict=True):
        alone = outcome_of_validate(item)
        if isinstance(alone, Invalid):
            assert isinstance(got, Invalid), item
            assert got.details == alone.details and str(got) == str(alone), item
        else:
            assert got == alone, item
    assert batch[0] == {"note_id": 1, "text": "hi"}
    assert set(batch[1].details) == {"note_id", "text"}
    assert batch[5].details == {"note_id": ["Must be an integer, not a string."]}


@pytest.mark.parametrize("data", [{}, {"note_id": 1}])
def test_a_missing_field_is_named(data):
    (got,) = validate_each(NoteIn, [data])
    assert got.details["text"] == ["This field is required."]


@pytest.mark.parametrize("text", ["plain", "é, 漢字, 😀 and RTL \u202e", "a\ud800b", "\udfff", "x" * 10_000 + "\udc00"])
def test_text_field_refuses_surrogates_as_drf_does(text):
    fast, drf = TextField(), serializers.CharField()
    try:
        expected = drf.run_validation(text)
    except serializers.ValidationError as exc:
        with pytest.raises(serializers.ValidationError) as refused:
            fast.run_validation(text)
        assert refused.value.detail == exc.detail and refused.value.detail[0].code == "surrogate_characters_not_allowed"
    else:
        assert fast.run_validation(text) == expected


class TypedIn(serializers.Serializer):
    count = StrictIntegerField(required=False)
    name = StrictCharField(required=False)
    flag = StrictBooleanField(required=False)
    colour = StrictChoiceField(choices=["red", "1"], required=False)
    size = StrictChoiceField(choices=[1, 2], required=False)
    ids = serializers.ListField(child=IdField(), required=False)
    body = TextField(required=False)


def errors_of(data, **kwargs) -> dict:
    with pytest.raises(Invalid) as refused:
        validate(TypedIn, data, **kwargs)
    return refused.value.details


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("count", "1", "Must be an integer, not a string."),
        ("count", True, "Must be an integer, not a boolean."),
        ("count", 1.0, "Must be an integer, not a number with a fraction, an exponent or over 64 bits."),
        ("count", [1], "Must be an integer, not an array."),
        ("count", {"n": 1}, "Must be an integer, not an object."),
        ("name", 123, "Must be a string, not an integer."),
        ("name", 1.5, "Must be a string, not a number with a fraction, an exponent or over 64 bits."),
        ("name", False, "Must be a string, not a boolean."),
        ("body", 123, "Must be a string, not an integer."),
        ("flag", "true", "Must be a boolean, not a string."),
        ("flag", 1, "Must be a boolean, not an integer."),
        ("colour", 1, "Must be a string, not an integer."),
        ("colour", True, "Must be a string, not a boolean."),
        ("size", "1", "Must be an integer, not a string."),
    ],
)
def test_a_value_of_another_json_type_is_invalid_with_a_field_message(field, value, expected):
    assert errors_of({field: value}) == {field: [expected]}


def test_values_of_the_right_type_pass():
    data = {"count": -3, "name": "x", "flag": False, "colour": "1", "size": 2, "ids": [1, 2**63 - 1], "body": "é"}
    assert dict(validate(TypedIn, data)) == data


def test_list_item_errors_are_keyed_by_string_indices_and_encode():
    details = errors_of({"ids": [1, "x", None, True, 0]})
    assert details == {
        "ids": {
            "1": ["Must be an integer, not a string."],
            "2": ["This field may not be null."],
            "3": ["Must be an integer, not a boolean."],
            "4": ["Ensure this value is greater than or equal to 1."],
        }
    }
    assert all(type(message) is str for messages in details["ids"].values() for message in messages)
    orjson.dumps(details)  # orjson refuses non-string keys
    (batched,) = validate_each(TypedIn, [{"ids": ["x"]}])
    assert batched.details == {"ids": {"0": ["Must be an integer, not a string."]}}


def test_text_input_is_parsed_as_drf_parses_it():
    expected = {"count": 7, "flag": True, "colour": "1", "size": 2, "ids": [3]}
    text = {"count": "7", "flag": "true", "colour": "1", "size": "2", "ids": ["3"]}
    assert dict(validate(TypedIn, text, text_input=True)) == expected
    assert dict(validate(TypedIn, QueryDict("count=7&flag=true&colour=1&size=2&ids=3"))) == expected  # a form
    assert errors_of({"count": "seven"}, text_input=True) == {"count": ["A valid integer is required."]}
