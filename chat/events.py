"""Chat group names and event payloads: the only place that builds them."""

from django.urls import reverse

from .models import Attachment, Conversation, Message


def conversation_group(conversation_id: int) -> str:
    """Every open connection of every member: ``chat.conversation.<id>`` (chat.message goes here)."""
    return f"chat.conversation.{conversation_id}"


def viewers_group(conversation_id: int) -> str:
    """Connections that sent ``chat.join`` (viewing the conversation): ``chat.viewers.<id>``."""
    return f"chat.viewers.{conversation_id}"


def support_desk_group() -> str:
    """Every open connection of every staff member: ``chat.support_desk`` (``support.updated`` goes here)."""
    return "chat.support_desk"


def attachment_data(attachment: Attachment) -> dict:
    """An attachment as messages and the upload endpoint show it; ``size`` in bytes, ``url`` checks access."""
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "mime_type": attachment.mime_type,
        "size": attachment.size,
        "url": reverse("chat-attachment-download", args=[attachment.pk]),
    }


def message_event(message: Message) -> dict:
    """The ``chat.message`` payload; ``created_at`` in epoch ms; ``attachment`` for image and file messages."""
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "content": message.content,
        "content_type": message.content_type,
        "client_msg_id": message.client_msg_id,
        "attachment": attachment_data(message.attachment) if message.attachment_id else None,
        "created_at": int(message.created_at.timestamp() * 1000),
    }


def conversation_summary(conversation: Conversation, members: list[dict] | None = None) -> dict:
    """
    A conversation as listed to its members; ``members`` ([{id, username, role}]) when already
    loaded. Support conversations add ``support_user_id`` and ``closed`` (bool).
    """
    if members is None:
        members = [
            {"id": user_id, "username": username, "role": role}
            for user_id, username, role in conversation.memberships.order_by("user_id").values_list(
                "user_id", "user__username", "role"
            )
        ]
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "title": conversation.title,
        "last_seq": conversation.last_seq,
        "members": members,
        **({"support_user_id": conversation.support_user_id, "closed": conversation.closed_at is not None}
           if conversation.kind == Conversation.Kind.SUPPORT else {}),
    }
