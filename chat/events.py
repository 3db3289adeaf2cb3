"""Chat group names and event payloads: the only place that builds them."""

from collections.abc import Collection

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet
from django.urls import reverse

from realtime.users import member_entry_from_values, user_fields, user_ref

from .models import Attachment, Conversation, Membership, Message


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


def for_message_events(messages: QuerySet) -> QuerySet:
    """
    ``messages`` with what ``message_event`` reads loaded in the same query: the sender (only the
    fields of its display name) and the attachment. Every query that builds many events uses it.
    """
    return messages.select_related("sender", "attachment").only(
        *(f.name for f in Message._meta.concrete_fields), *user_fields("sender__")
    )


def message_event(message: Message) -> dict:
    """
    The ``chat.message`` payload; ``created_at`` in epoch ms; ``attachment`` for image and file
    messages; ``sender`` is realtime.users.user_ref (load it with ``for_message_events``).
    """
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "sender": user_ref(message.sender),
        "content": message.content,
        "content_type": message.content_type,
        "client_msg_id": message.client_msg_id,
        "attachment": attachment_data(message.attachment) if message.attachment_id else None,
        "created_at": int(message.created_at.timestamp() * 1000),
    }


def member_rows(
    conversation_ids: Collection[int], *, seen_by: Collection[int] | None = None, support_ids: Collection[int] = ()
) -> list[tuple[int, int, dict]]:
    """
    ``(conversation_id, last_read_seq, member entry)`` of every member of ``conversation_ids``, by
    user id, in one query: the one place chat builds member entries (realtime.users.
    member_entry_from_values, the shape of every domain). With ``seen_by`` (user ids), only of the
    conversations that one of those users is a member of, or that are in ``support_ids``.

    One statement written here rather than built by the ORM: building and compiling the ORM's form
    (a join, an EXISTS subquery, values) took 1.8 ms of CPU a call and running it 0.1 ms (loaded
    2-core machine), and chat.join runs it for every batch of a reconnect storm.
    """
    if not conversation_ids:
        return []
    membership, user = Membership._meta, get_user_model()._meta
    quote = connection.ops.quote_name
    table, users = quote(membership.db_table), quote(user.db_table)
    conversation, read_seq, user_id, role = (
        quote(membership.get_field(name).column) for name in ("conversation", "last_read_seq", "user", "role")
    )
    columns = ", ".join(
        [f"m.{conversation}", f"m.{read_seq}", f"m.{user_id}", f"m.{role}"]
        + [f"u.{quote(user.get_field(name).column)}" for name in user_fields()]
    )
    sql = (
        f"SELECT {columns} FROM {table} m INNER JOIN {users} u ON u.{quote(user.pk.column)} = m.{user_id} "
        f"WHERE m.{conversation} IN ({_placeholders(conversation_ids)})"
    )
    params = [*conversation_ids]
    if seen_by is not None:
        sql += (
            f" AND (EXISTS (SELECT 1 FROM {table} v WHERE v.{conversation} = m.{conversation}"
            f" AND v.{user_id} IN ({_placeholders(seen_by)}))"
        )
        params += seen_by
        if support_ids:
            sql += f" OR m.{conversation} IN ({_placeholders(support_ids)})"
            params += support_ids
        sql += ")"
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ORDER BY m.{user_id}", params)
        return [
            (conversation_id, last_read_seq, member_entry_from_values(member_id, role, display))
            for conversation_id, last_read_seq, member_id, role, *display in cursor.fetchall()
        ]


def _placeholders(values: Collection) -> str:
    return ", ".join(["%s"] * len(values))


def members_of_conversations(conversation_ids: list[int]) -> dict[int, list[dict]]:
    """``{conversation_id: [member entry...]}`` for many conversations in one query, by user id (``member_rows``)."""
    members: dict[int, list[dict]] = {cid: [] for cid in conversation_ids}
    for conversation_id, _, entry in member_rows(conversation_ids):
        members[conversation_id].append(entry)
    return members


def conversation_summary(conversation: Conversation, members: list[dict] | None = None) -> dict:
    """
    A conversation as listed to its members; ``members`` (its ``members_of_conversations``) when
    already loaded. Support conversations add ``support_user_id`` and ``closed`` (bool).
    """
    if members is None:
        members = members_of_conversations([conversation.pk])[conversation.pk]
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "title": conversation.title,
        "last_seq": conversation.last_seq,
        "members": members,
        **(
            {"support_user_id": conversation.support_user_id, "closed": conversation.closed_at is not None}
            if conversation.kind == Conversation.Kind.SUPPORT
            else {}
        ),
    }
