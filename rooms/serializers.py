"""Input shapes of generic rooms, shared by the WebSocket handlers, the HTTP publish API and the admin."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from realtime.validation import IdField, StrictBooleanField, StrictCharField, TextField

# An application's event name inside ``room.message`` / ``server.message``: what the publisher
# calls it (``move``, ``score:updated``), at most 100 characters of a set every client can route on.
EVENT_NAME = RegexValidator(r"^[A-Za-z0-9_.:-]{1,100}\Z", "1-100 letters, digits, '_', '.', ':' or '-'.")
# What a connection id looks like (``welcome``'s ``connection_id``: uuid4 hex).
CONNECTION_ID = RegexValidator(r"^[0-9a-f]{32}\Z", "A connection id: 32 lower-case hex digits.")
# The targets of the HTTP publish API, of which a request names exactly one.
TARGETS = ("room", "user_id", "connection_id", "everyone")


class RoomIn(serializers.Serializer):
    """``room.join`` / ``room.leave`` data: ``{room}``."""

    room = StrictCharField(max_length=80)


class RoomPublishIn(serializers.Serializer):
    """``room.publish`` data: ``{room, event, data?, except_self?}`` (``data`` any JSON, null when absent)."""

    room = StrictCharField(max_length=80)
    event = StrictCharField(validators=[EVENT_NAME])
    data = serializers.JSONField(required=False, allow_null=True, default=None)
    except_self = StrictBooleanField(required=False, default=False)


class PublishIn(serializers.Serializer):
    """
    ``POST /api/rooms/publish/``: exactly one target of ``room`` (a room name), ``user_id``,
    ``connection_id`` (as ``welcome`` gave it) or ``everyone`` (``true``); ``event``; ``data`` (any
    JSON, null when absent).
    """

    room = StrictCharField(max_length=80, required=False)
    user_id = IdField(required=False)
    connection_id = StrictCharField(validators=[CONNECTION_ID], required=False)
    everyone = StrictBooleanField(required=False)
    event = StrictCharField(validators=[EVENT_NAME])
    data = serializers.JSONField(required=False, allow_null=True, default=None)

    def validate_everyone(self, value):
        if value is not True:
            raise serializers.ValidationError("Only true: leave it out to publish to another target.")
        return value

    def validate(self, attrs):
        named = [target for target in TARGETS if target in attrs]
        if len(named) != 1:
            raise serializers.ValidationError(f"Name exactly one target of: {', '.join(TARGETS)}.")
        return attrs


class AnnouncementIn(serializers.Serializer):
    """The admin's announcement to everyone online: ``{text}``, 1 to 2,000 characters."""

    text = TextField(max_length=2000)
