"""Validate a frame's ``data`` with a DRF serializer: one wire shape for WebSocket and REST."""

from rest_framework import serializers

from .errors import Invalid

# Database integer keys are signed 64-bit: a larger id is invalid, not a server error.
MAX_ID = 2**63 - 1


def validate(serializer_class: type[serializers.Serializer], data: dict) -> dict:
    """
    Return ``serializer_class(data=data)``'s validated data.

    Raise ``Invalid`` whose ``details`` map each bad field to its messages (DRF's ``errors``).
    """
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise Invalid("Invalid data", details=serializer.errors)
    return serializer.validated_data


def IdField(**kwargs) -> serializers.IntegerField:
    """A positive database id (1 .. 2**63-1)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)
