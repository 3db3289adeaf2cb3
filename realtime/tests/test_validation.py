"""realtime.validation: a batch validated with one serializer answers each item as ``validate`` would."""

import pytest
from rest_framework import serializers

from realtime.errors import Invalid
from realtime.validation import IdField, TextField, validate, validate_each


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
    assert batch[0] == {"note_id": 1, "text": "hi"} and batch[5] == {"note_id": 3, "text": "ok"}
    assert set(batch[1].details) == {"note_id", "text"}


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
