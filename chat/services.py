"""
Chat write paths: every write, whether from a socket, REST or the admin, goes through here and
publishes after its transaction commits.
"""

from django.db import IntegrityError, transaction

from realtime.groups import user_group
from realtime.publish import publish_on_commit, subscribe_user_on_commit

from .events import conversation_group, message_event
from .models import Conversation, Membership, Message


def _direct_key(a_id: int, b_id: int) -> str:
    low, high = sorted((a_id, b_id))
    return f"{low}:{high}"


def get_or_create_direct_conversation(*, user, other) -> tuple[Conversation, bool]:
    """
    Return the direct conversation of ``user`` and ``other`` and whether it was created now.

    One per pair, kept by the unique ``direct_key`` even when both create it at once. On
    creation both users' open connections are subscribed to it after commit.
    """
    key = _direct_key(user.pk, other.pk)
    existing = Conversation.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(kind=Conversation.Kind.DIRECT, direct_key=key)
            Membership.objects.bulk_create(
                [Membership(user=user, conversation=conversation), Membership(user=other, conversation=conversation)]
            )
    except IntegrityError:
        return Conversation.objects.get(direct_key=key), False
    for member in (user, other):
        subscribe_user_on_commit(user_group(member.pk), conversation_group(conversation.pk))
    return conversation, True


def _store_message(*, sender, conversation, content, content_type, client_msg_id) -> tuple[Message, bool]:
    if client_msg_id:
        existing = Message.objects.filter(sender=sender, client_msg_id=client_msg_id).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            # The row lock (PostgreSQL) or the IMMEDIATE write lock (SQLite) serialises senders,
            # so seq is gap-free and strictly increasing per conversation.
            locked = Conversation.objects.select_for_update().only("last_seq").get(pk=conversation.pk)
            seq = locked.last_seq + 1
            Conversation.objects.filter(pk=conversation.pk).update(last_seq=seq)
            message = Message.objects.create(
                conversation_id=conversation.pk,
                sender=sender,
                content=content,
                content_type=content_type,
                client_msg_id=client_msg_id or None,
                seq=seq,
            )
    except IntegrityError:
        # A concurrent retry with the same idempotency key won the race: answer with its message.
        if client_msg_id:
            existing = Message.objects.filter(sender=sender, client_msg_id=client_msg_id).first()
            if existing is not None:
                return existing, False
        raise
    conversation.last_seq = seq
    # A sender has read the conversation up to their own message.
    Membership.objects.filter(conversation_id=conversation.pk, user=sender, last_read_seq__lt=seq).update(
        last_read_seq=seq
    )
    return message, True


def send_message(
    *, sender, conversation: Conversation, content: str, content_type: str = Message.ContentType.TEXT,
    client_msg_id: str | None = None,
) -> tuple[Message, bool]:
    """
    Store a message from ``sender`` (a member) and publish ``chat.message`` to the conversation's
    group after commit. Return ``(message, created)``.

    ``seq`` is strictly increasing per conversation. A repeated ``client_msg_id`` from the same
    sender returns the stored message with ``created`` False and publishes nothing (idempotency
    key, docs/protocol.md). Content rules are the serializers' (chat/serializers.py).
    """
    with transaction.atomic():
        message, created = _store_message(
            sender=sender, conversation=conversation, content=content, content_type=content_type,
            client_msg_id=client_msg_id,
        )
        if created:
            publish_on_commit(conversation_group(conversation.pk), "chat.message", message_event(message))
    return message, created


def send_direct_message(
    *, sender, recipient, content: str, content_type: str = Message.ContentType.TEXT,
    client_msg_id: str | None = None,
) -> tuple[Message, bool]:
    """
    Send to the direct conversation of ``sender`` and ``recipient``, creating it on first use.
    Return ``(message, created)``.

    The first message of a new conversation is published to both users' groups: their processes
    are not in the new conversation's group until the subscription sent just before it is
    applied, and the user groups carry both in order.
    """
    with transaction.atomic():
        conversation, new_conversation = get_or_create_direct_conversation(user=sender, other=recipient)
        message, created = _store_message(
            sender=sender, conversation=conversation, content=content, content_type=content_type,
            client_msg_id=client_msg_id,
        )
        if created:
            event = message_event(message)
            if new_conversation:
                for member in (sender, recipient):
                    publish_on_commit(user_group(member.pk), "chat.message", event)
            else:
                publish_on_commit(conversation_group(conversation.pk), "chat.message", event)
    return message, created


def add_member(*, conversation: Conversation, user) -> Membership:
    """Add ``user`` to a group ``conversation`` and subscribe their open connections after commit."""
    with transaction.atomic():
        membership, _ = Membership.objects.get_or_create(conversation=conversation, user=user)
        subscribe_user_on_commit(user_group(user.pk), conversation_group(conversation.pk))
    return membership


def mark_read(*, user, conversation: Conversation, seq: int) -> tuple[int, int]:
    """
    Record that ``user`` (a member) has read ``conversation`` up to ``seq`` (clamped to its
    last message) and tell the members with ``chat.read {conversation_id, user_id, seq}``.
    Never moves backwards: an older seq changes and publishes nothing. Return the stored
    ``(last_read_seq, unread)``.
    """
    with transaction.atomic():
        last_seq = Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation.pk)
        seq = min(seq, last_seq)
        moved = Membership.objects.filter(conversation=conversation, user=user, last_read_seq__lt=seq).update(
            last_read_seq=seq
        )
        if moved:
            publish_on_commit(conversation_group(conversation.pk), "chat.read",
                              {"conversation_id": conversation.pk, "user_id": user.pk, "seq": seq})
        read_seq = Membership.objects.values_list("last_read_seq", flat=True).get(conversation=conversation, user=user)
        return read_seq, last_seq - read_seq
