"""Chat input and output shapes, shared by the WebSocket handlers and REST."""

import mimetypes

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from realtime.validation import IdField, StrictCharField, StrictChoiceField, StrictIntegerField, TextField

from .models import Membership, Message

ContentType = Message.ContentType
# The roles a group member can be given; the owner's passes only when the owner leaves (services).
ASSIGNABLE_ROLES = [Membership.Role.MEMBER, Membership.Role.ADMIN]


class MessageContentIn(serializers.Serializer):
    """
    A message's content: ``content`` (text, or the caption of an image or file), ``content_type``
    (text, image, file), ``attachment_id`` (required for image and file, refused for text; an
    upload of the sender's not yet sent) and the optional idempotency key ``client_msg_id``.
    """

    # Stored exactly as sent: no trimming. NUL is refused (DRF's default validator; PostgreSQL
    # cannot store it). May be empty only for an image or file (the caption is optional).
    content = TextField(trim_whitespace=False, allow_blank=True, default="")
    content_type = StrictChoiceField(choices=ContentType.choices, default=ContentType.TEXT)
    attachment_id = IdField(required=False)
    client_msg_id = StrictCharField(max_length=64, required=False, allow_null=True)

    def validate_content(self, value: str) -> str:
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value

    def validate(self, attrs):
        if attrs["content_type"] == ContentType.TEXT:
            if "attachment_id" in attrs:
                raise serializers.ValidationError({"attachment_id": ["Only image and file messages have one."]})
            if not attrs["content"].strip():
                raise serializers.ValidationError({"content": ["Message content cannot be empty."]})
        elif "attachment_id" not in attrs:
            raise serializers.ValidationError(
                {"attachment_id": ["Upload the image or file first (POST /api/chat/attachments/)."]}
            )
        return attrs


class SendMessageIn(MessageContentIn):
    """``chat.send`` data: exactly one of ``conversation_id`` and ``recipient_id``, plus the content."""

    conversation_id = IdField(required=False)
    recipient_id = IdField(required=False)

    def validate(self, attrs):
        if ("conversation_id" in attrs) == ("recipient_id" in attrs):
            raise serializers.ValidationError(
                {"conversation_id": ["Give exactly one of conversation_id and recipient_id."]}
            )
        return super().validate(attrs)


class CreateGroupIn(serializers.Serializer):
    """``chat.create_group`` / ``POST /api/chat/conversations/``: a title and the other members' ids."""

    title = StrictCharField(max_length=200)
    member_ids = serializers.ListField(child=IdField(), max_length=1000, default=list)


class MemberIn(serializers.Serializer):
    """``chat.add_member``: who to add to a group, as ``member`` (default) or ``admin``."""

    conversation_id = IdField()
    user_id = IdField()
    role = StrictChoiceField(choices=ASSIGNABLE_ROLES, default=Membership.Role.MEMBER)


class ChangeRoleIn(serializers.Serializer):
    """
    ``chat.change_role`` / ``PATCH /api/chat/conversations/{id}/members/{user_id}/ {role}``: make
    a group's member an ``admin`` or a plain ``member`` again (services.change_role has the rules).
    """

    conversation_id = IdField()
    user_id = IdField()
    role = StrictChoiceField(choices=ASSIGNABLE_ROLES)


class RemoveMemberIn(serializers.Serializer):
    """``chat.remove_member``: who to remove from a group (oneself: leave)."""

    conversation_id = IdField()
    user_id = IdField()


def type_names(mime_types: list[str]) -> str:
    """
    ``mime_types`` as a person reads them: each type's usual extension in capitals, in order,
    each once ("PDF, TXT, CSV, PNG"); a type without a known extension is shown as is.
    """
    names = []
    for mime_type in mime_types:
        extension = mimetypes.guess_extension(mime_type, strict=False)
        name = extension.lstrip(".").upper() if extension else mime_type
        if name not in names:
            names.append(name)
    return ", ".join(names)


class AttachmentIn(serializers.Serializer):
    """
    ``POST /api/chat/attachments/`` (multipart): ``file`` and ``kind`` (image or file). At most
    ``CHAT_MAX_UPLOAD_BYTES``; an image must open in Pillow as one of ``CHAT_IMAGE_TYPES``; a
    file's type (from its name) must be in ``CHAT_FILE_TYPES`` or an image type. Refusals are
    sentences the chat page shows as they are ("That file type isn't allowed: use PDF, ...").
    """

    file = serializers.FileField()
    kind = StrictChoiceField(choices=[ContentType.IMAGE, ContentType.FILE])

    def validate(self, attrs):
        upload = attrs["file"]
        limit = settings.CHAT_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise serializers.ValidationError(
                {"file": [f"That file is too big: the limit is {limit / 1_048_576:.3g} MB ({limit} bytes)."]}
            )
        if attrs["kind"] == ContentType.IMAGE:
            try:
                image = serializers.ImageField().to_internal_value(upload)  # Pillow opens and verifies it
            except (serializers.ValidationError, DjangoValidationError) as exc:
                raise serializers.ValidationError(
                    {"file": [f"That image could not be read: use {type_names(settings.CHAT_IMAGE_TYPES)}."]}
                ) from exc
            mime_type = getattr(image, "content_type", None) or mimetypes.guess_type(upload.name)[0]
            if mime_type not in settings.CHAT_IMAGE_TYPES:
                raise serializers.ValidationError(
                    {"file": [f"That image type isn't allowed: use {type_names(settings.CHAT_IMAGE_TYPES)}."]}
                )
        else:
            mime_type = mimetypes.guess_type(upload.name)[0]
            allowed = [*settings.CHAT_FILE_TYPES, *settings.CHAT_IMAGE_TYPES]
            if mime_type not in allowed:
                raise serializers.ValidationError(
                    {"file": [f"That file type isn't allowed: use {type_names(allowed)}."]}
                )
        attrs["mime_type"] = mime_type
        return attrs


class JoinIn(serializers.Serializer):
    """``chat.join`` data; ``after_seq`` asks for the messages missed since that seq."""

    conversation_id = IdField()
    after_seq = StrictIntegerField(min_value=0, max_value=2**63 - 1, required=False)
    limit = StrictIntegerField(min_value=1, max_value=100, default=100)


class ConversationIdIn(serializers.Serializer):
    conversation_id = IdField()


class ReadIn(serializers.Serializer):
    """``chat.read`` data: the member has read up to ``seq``."""

    conversation_id = IdField()
    seq = StrictIntegerField(min_value=0, max_value=2**63 - 1)


class HistoryIn(serializers.Serializer):
    """``chat.history`` data: a page of messages older than ``before_seq`` (newest page without it)."""

    conversation_id = IdField()
    before_seq = StrictIntegerField(min_value=1, max_value=2**63 - 1, required=False)
    limit = StrictIntegerField(min_value=1, max_value=100, default=50)


class PeopleSearchIn(serializers.Serializer):
    """``GET /api/users/?search=``: at least 2 characters (surrounding spaces ignored), at most 100."""

    search = StrictCharField(min_length=2, max_length=100)
