"""Chat read paths and access checks."""

from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from realtime.errors import Forbidden, Invalid, NotFound

from .events import conversation_summary, message_event
from .models import Conversation, Membership, Message


def access_conversation(user, conversation_id: int) -> Conversation:
    """
    Return the conversation if ``user`` is a member.

    Raise ``NotFound`` if no conversation has that id, ``Forbidden`` if ``user`` is not a member
    (issue 2: "members only; forbidden otherwise"). Neither reveals any of its data.
    """
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise NotFound("Conversation not found")
    if not Membership.objects.filter(conversation=conversation, user=user).exists():
        raise Forbidden("You are not a member of this conversation")
    return conversation


def access_recipient(sender, recipient_id: int):
    """Return the active user ``recipient_id``; raise ``NotFound`` if absent or inactive, ``Invalid`` if it is the sender."""
    if recipient_id == sender.pk:
        raise Invalid("Cannot start a direct conversation with yourself", details={"recipient_id": ["Is yourself."]})
    recipient = get_user_model().objects.filter(pk=recipient_id, is_active=True).first()
    if recipient is None:
        raise NotFound("User not found")
    return recipient


def conversation_ids_for(user) -> list[int]:
    """Return the ids of every conversation ``user`` is a member of."""
    return list(Membership.objects.filter(user=user).values_list("conversation_id", flat=True))


def conversations_for(user) -> list[dict]:
    """
    ``user``'s conversations, most recent activity first, each as its summary plus ``last_message``
    (or None), ``last_read_seq`` and ``unread`` (messages after ``last_read_seq``). Three queries.
    """
    memberships = list(
        Membership.objects.filter(user=user).select_related("conversation").order_by("-conversation__last_seq")
    )
    conversations = [m.conversation for m in memberships]
    last = Q(pk__in=[])
    for conversation in conversations:
        if conversation.last_seq:
            last |= Q(conversation_id=conversation.pk, seq=conversation.last_seq)
    last_messages = {m.conversation_id: m for m in Message.objects.filter(last)}
    members = members_of_conversations([c.pk for c in conversations])
    return [
        {
            **conversation_summary(m.conversation, members[m.conversation_id]),
            "last_message": message_event(last_messages[m.conversation_id]) if m.conversation_id in last_messages else None,
            "last_read_seq": m.last_read_seq,
            "unread": m.conversation.last_seq - m.last_read_seq,
        }
        for m in memberships
    ]


def members_of_conversations(conversation_ids: list[int]) -> dict[int, list[dict]]:
    """``{conversation_id: [{"id", "username"}...]}`` for many conversations in one query."""
    members: dict[int, list[dict]] = {cid: [] for cid in conversation_ids}
    rows = Membership.objects.filter(conversation_id__in=conversation_ids).order_by("user_id")
    for conversation_id, user_id, username in rows.values_list("conversation_id", "user_id", "user__username"):
        members[conversation_id].append({"id": user_id, "username": username})
    return members


def small_conversation_ids(user_id: int, max_members: int) -> list[int]:
    """Ids of ``user_id``'s conversations that have at most ``max_members`` members."""
    # Annotate before filtering on memberships: after it, Count would see the filtered join (1 row).
    return list(
        Conversation.objects.annotate(size=Count("memberships", distinct=True))
        .filter(size__lte=max_members, memberships__user_id=user_id)
        .values_list("pk", flat=True)
    )


def messages_after(conversation: Conversation, after_seq: int, limit: int) -> tuple[list[Message], bool]:
    """Return up to ``limit`` messages with ``seq > after_seq`` in seq order, and whether more follow."""
    rows = list(conversation.messages.filter(seq__gt=after_seq).order_by("seq")[: limit + 1])
    return rows[:limit], len(rows) > limit


def messages_before(conversation: Conversation, before_seq: int | None, limit: int) -> tuple[list[Message], bool]:
    """Return up to ``limit`` messages with ``seq < before_seq`` (newest page), in seq order, and whether older ones exist."""
    queryset = conversation.messages.all()
    if before_seq is not None:
        queryset = queryset.filter(seq__lt=before_seq)
    rows = list(queryset.order_by("-seq")[: limit + 1])
    return rows[:limit][::-1], len(rows) > limit
