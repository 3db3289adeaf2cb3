"""
Validate a frame's ``data`` with a DRF serializer: one wire shape for WebSocket and REST.

The field classes here hold JSON input to the types docs/protocol.md gives: DRF's own take
``"1"`` for an integer, ``123`` for a string and ``1`` for a choice ``"1"``, which let a client
bug through as a different command (``"conversation_id": "1"`` was stored in conversation 1).
Every input serializer of the apps uses them. A query string or a form, where every value is
text, is parsed as DRF parses it (``validate(..., text_input=True)``, or data that is a
``QueryDict``).
"""

import threading
from collections.abc import Mapping

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from .errors import Invalid

__all__ = [
    "MAX_ID",
    "TEXT_INPUT",
    "WRONG_TYPE",
    "IdField",
    "StrictBooleanField",
    "StrictCharField",
    "StrictChoiceField",
    "StrictIntegerField",
    "SurrogatesRefused",
    "TextField",
    "error_details",
    "json_type",
    "validate",
    "validate_each",
]

# Database integer keys are signed 64-bit: a larger id is invalid, not a server error.
MAX_ID = 2**63 - 1

# Serializer context key: the values come from a query string or a form, where all are text.
TEXT_INPUT = "text_input"

_thread_instances = threading.local()  # validate_each's serializers, one per class and thread


def validate(serializer_class: type[serializers.Serializer], data, *, text_input: bool | None = None) -> dict:
    """
    Return ``serializer_class(data=data)``'s validated data.

    Raise ``Invalid`` whose ``details`` map each bad field to its messages (DRF's ``errors``,
    made JSON-safe by ``error_details``). ``text_input``: the values come from a query string or
    a form, so the strict fields parse them from text as DRF does; by default, when ``data`` is
    a ``QueryDict`` (what DRF's form and multipart parsers give).
    """
    if text_input is None:
        text_input = isinstance(data, QueryDict)
    serializer = serializer_class(data=data, context={TEXT_INPUT: True} if text_input else {})
    if not serializer.is_valid():
        raise Invalid("Invalid data", details=error_details(serializer.errors))
    return serializer.validated_data


def validate_each(serializer_class: type[serializers.Serializer], items: list[dict]) -> list[dict | Invalid]:
    """
    Validate each of ``items`` with one ``serializer_class`` instance, as DRF's ``ListSerializer``
    validates its children; return, per item, its validated data or the ``Invalid`` that
    ``validate`` would raise for it (same ``details``).

    For batch handlers (realtime.delivery.group_commit): building a serializer deep-copies its declared
    fields, about 0.4 ms for ``chat.send``'s, against 0.05 ms to validate one frame with it, so
    each thread keeps one instance per class (``run_validation`` keeps no state on it).
    """
    serializer = _reused_instance(serializer_class)
    outcomes: list[dict | Invalid] = []
    for data in items:
        try:
            outcomes.append(serializer.run_validation(data))
        except serializers.ValidationError as exc:
            outcomes.append(Invalid("Invalid data", details=error_details(exc.detail)))
    return outcomes


def error_details(detail) -> dict | list | str:
    """
    Return DRF's error ``detail`` as plain JSON: keys as strings, messages as ``str``.

    DRF keys the errors of list items by their integer index (``{"member_ids": {0: [...]}}``),
    which orjson refuses to encode (issue 20: the reply failed and the connection closed with
    1011); here that is ``{"member_ids": {"0": [...]}}``.
    """
    if isinstance(detail, Mapping):
        return {str(key): error_details(value) for key, value in detail.items()}
    if isinstance(detail, (list, tuple)):
        return [error_details(value) for value in detail]
    return str(detail)


def _reused_instance(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    instances = getattr(_thread_instances, "by_class", None)
    if instances is None:
        instances = _thread_instances.by_class = {}
    if serializer_class not in instances:
        instances[serializer_class] = serializer_class()
    return instances[serializer_class]


# -- strict fields -------------------------------------------------------------------------

WRONG_TYPE = "Must be {expected}, not {actual}."


def json_type(value) -> str:
    """Name ``value``'s JSON type for an error message: "a string", "an integer", "null"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):  # orjson also reads an integer over 64 bits as a float
        return "a number with a fraction, an exponent or over 64 bits"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


class _Strict:
    """Shared by the strict fields: whether the input is text (``TEXT_INPUT``), and the type error."""

    def text_input(self) -> bool:
        """Whether the serializer validates a query string or a form (``validate``'s ``text_input``)."""
        return bool(self.context.get(TEXT_INPUT))

    def fail_type(self, expected: str, data):
        """Raise the field's ``ValidationError``: "Must be an integer, not a string."."""
        raise serializers.ValidationError(
            WRONG_TYPE.format(expected=expected, actual=json_type(data)), code="wrong_type"
        )


class StrictIntegerField(_Strict, serializers.IntegerField):
    """
    DRF's ``IntegerField`` for a JSON integer only: a string (``"1"``, which DRF takes), a
    boolean or a float (``1.0``, which DRF takes as 1) is invalid. Text input is parsed.
    """

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if self.text_input():
            return super().to_internal_value(data)
        self.fail_type("an integer", data)


class StrictCharField(_Strict, serializers.CharField):
    """DRF's ``CharField`` for a JSON string only: a number (which DRF stores as its text) or a boolean is invalid."""

    def to_internal_value(self, data):
        if not isinstance(data, str) and not self.text_input():
            self.fail_type("a string", data)
        return super().to_internal_value(data)


class StrictBooleanField(_Strict, serializers.BooleanField):
    """
    DRF's ``BooleanField`` for JSON ``true``/``false`` only (DRF also takes ``"yes"``, ``1``, ``"off"``...). Text input
    is parsed.
    """

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if self.text_input():
            return super().to_internal_value(data)
        self.fail_type("a boolean", data)


class StrictChoiceField(_Strict, serializers.ChoiceField):
    """
    DRF's ``ChoiceField`` that takes a value of its choices' JSON type only: for string choices a
    string (DRF matches ``1`` to ``"1"`` by its text), for integer choices an integer.
    """

    def to_internal_value(self, data):
        if not self.text_input():
            types = {json_type(choice) for choice in self.choices}
            if json_type(data) not in types:
                self.fail_type(" or ".join(sorted(types)), data)
        return super().to_internal_value(data)


class SurrogatesRefused(ProhibitSurrogateCharactersValidator):
    """
    DRF's surrogate check (same message and code) at C speed: UTF-8 encoding refuses exactly the
    surrogate code points U+D800-U+DFFF. DRF's own loops over the characters in Python: a
    60,000-character ``chat.send`` took 2.5 ms to validate with it, 0.13 ms with this.
    """

    def __call__(self, value):
        text = str(value)
        if text.isascii():
            return
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise serializers.ValidationError(
                self.message.format(code_point=ord(text[exc.start])), code=self.code
            ) from None


class TextField(StrictCharField):
    """A ``StrictCharField`` for long text (a chat message): DRF's checks, the surrogate one ``SurrogatesRefused``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            SurrogatesRefused() if isinstance(v, ProhibitSurrogateCharactersValidator) else v for v in self.validators
        ]


def IdField(**kwargs) -> StrictIntegerField:
    """A positive database id (1 .. 2**63-1), a JSON integer."""
    return StrictIntegerField(min_value=1, max_value=MAX_ID, **kwargs)
