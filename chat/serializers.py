"""Chat input and output shapes, shared by the WebSocket handlers and REST."""

from django.conf import settings
from rest_framework import serializers

from realtime.validation import IdField

from .models import Message


class MessageContentMixin(serializers.Serializer):
    # Stored exactly as sent: no trimming. NUL is refused (DRF's default validator; PostgreSQL
    # cannot store it).
    content = serializers.CharField(trim_whitespace=False)
    content_type = serializers.ChoiceField(choices=Message.ContentType.choices, default=Message.ContentType.TEXT)
    client_msg_id = serializers.CharField(max_length=64, required=False, allow_null=True)

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Message content cannot be empty.")
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value


class SendMessageIn(MessageContentMixin):
    """``chat.send`` data: exactly one of ``conversation_id`` and ``recipient_id``."""

    conversation_id = IdField(required=False)
    recipient_id = IdField(required=False)

    def validate(self, attrs):
        if ("conversation_id" in attrs) == ("recipient_id" in attrs):
            raise serializers.ValidationError(
                {"conversation_id": ["Give exactly one of conversation_id and recipient_id."]}
            )
        return attrs


class JoinIn(serializers.Serializer):
    """``chat.join`` data; ``after_seq`` asks for the messages missed since that seq."""

    conversation_id = IdField()
    after_seq = serializers.IntegerField(min_value=0, max_value=2**63 - 1, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=100)


class ConversationIdIn(serializers.Serializer):
    conversation_id = IdField()


class ReadIn(serializers.Serializer):
    """``chat.read`` data: the member has read up to ``seq``."""

    conversation_id = IdField()
    seq = serializers.IntegerField(min_value=0, max_value=2**63 - 1)


class HistoryIn(serializers.Serializer):
    """``chat.history`` data: a page of messages older than ``before_seq`` (newest page without it)."""

    conversation_id = IdField()
    before_seq = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
