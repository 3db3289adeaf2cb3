"""Workspace input shapes, shared by the WebSocket handlers and REST (one wire shape for both)."""

import orjson
from django.conf import settings
from rest_framework import serializers

from realtime.validation import IdField, StrictCharField, StrictChoiceField, StrictIntegerField

from .models import Workspace, WorkspaceMember


class WorkspaceFieldsIn(serializers.Serializer):
    """The editable fields; ``settings`` is a JSON object of at most ``WORKSPACE_MAX_SETTINGS_BYTES``."""

    name = StrictCharField(max_length=Workspace._meta.get_field("name").max_length)
    description = StrictCharField(max_length=2000, allow_blank=True, trim_whitespace=False, required=False)
    settings = serializers.JSONField(required=False)

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Name cannot be blank.")
        return value

    def validate_settings(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        limit = settings.WORKSPACE_MAX_SETTINGS_BYTES
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError as exc:
            # What orjson cannot encode (over 254 levels deep, an integer past 64 bits) could not be
            # sent back either.
            raise serializers.ValidationError(f"Cannot be stored as JSON: {exc}.") from None
        if len(encoded) > limit:
            raise serializers.ValidationError(f"Must be at most {limit} bytes as JSON.")
        if _holds_nul(value):
            # PostgreSQL's jsonb refuses \u0000 (the write would fail as a server error); SQLite takes it.
            raise serializers.ValidationError("Keys and strings cannot contain the NUL character (U+0000).")
        return value


def _holds_nul(value) -> bool:
    """Whether a NUL character is in any key or string of the JSON ``value``."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class CreateIn(WorkspaceFieldsIn):
    """``workspace.create`` data."""


class UpdateBodyIn(serializers.Serializer):
    """``PATCH /api/workspaces/{id}/`` body: ``changes`` holds one or more editable fields, nothing else."""

    version = StrictIntegerField(min_value=1, max_value=2**31 - 1)
    changes = serializers.DictField()

    def validate_changes(self, value: dict) -> dict:
        unknown = sorted(set(value) - set(WorkspaceFieldsIn().fields))
        if unknown:
            raise serializers.ValidationError({field: ["Unknown or read-only field."] for field in unknown})
        if not value:
            raise serializers.ValidationError("Give at least one of name, description, settings.")
        fields = WorkspaceFieldsIn(data=value, partial=True, context=self.context)
        if not fields.is_valid():
            raise serializers.ValidationError(fields.errors)
        return dict(fields.validated_data)


class UpdateIn(UpdateBodyIn):
    """``workspace.update`` data."""

    id = IdField()


class WorkspaceIdIn(serializers.Serializer):
    """``workspace.delete`` data."""

    id = IdField()


class ReorderIn(serializers.Serializer):
    """``workspace.reorder`` data: the user's workspace ids in the new order."""

    ids = serializers.ListField(child=IdField(), max_length=10_000, allow_empty=True)


class ShareBodyIn(serializers.Serializer):
    """``POST /api/workspaces/{id}/members/`` body."""

    user_id = IdField()
    role = StrictChoiceField(choices=[WorkspaceMember.Role.EDITOR, WorkspaceMember.Role.VIEWER])


class ShareIn(ShareBodyIn):
    """``workspace.share`` data."""

    id = IdField()


class UnshareIn(serializers.Serializer):
    """``workspace.unshare`` data."""

    id = IdField()
    user_id = IdField()


class MemberOut(serializers.Serializer):
    """A member entry, the shape of every domain (realtime.users.member_entry)."""

    user_id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField(help_text="display name: full name, else username")
    is_staff = serializers.BooleanField()
    role = serializers.ChoiceField(choices=WorkspaceMember.Role.choices)


class WorkspaceOut(serializers.Serializer):
    """The workspace shape of acks, events and REST responses (workspaces.events.workspace_data)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    settings = serializers.JSONField()
    owner_id = serializers.IntegerField()
    version = serializers.IntegerField()
    created_at = serializers.IntegerField(help_text="epoch ms")
    updated_at = serializers.IntegerField(help_text="epoch ms")
    members = MemberOut(many=True)
