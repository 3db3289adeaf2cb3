"""
Chat write paths: every write, whether from a socket, REST or the admin, goes through here and
publishes after its transaction commits.
"""

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from realtime.errors import Conflict, Forbidden, Invalid, NotFound, ProtocolError
from realtime.groups import user_group
from realtime.publish import publish, publish_on_commit, subscribe_user_on_commit, unsubscribe_user_on_commit
from realtime.users import display_name

from . import selectors
from .events import (
    conversation_group,
    conversation_summary,
    for_message_events,
    message_event,
    support_desk_group,
    viewers_group,
)
from .models import Attachment, Conversation, Membership, Message


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


@dataclass(frozen=True)
class SendRequest:
    """
    One send from ``sender`` (the fields of serializers.SendMessageIn): to ``conversation_id``,
    or to the direct conversation with ``recipient_id``.
    """

    sender: Any
    content: str = ""
    content_type: str = Message.ContentType.TEXT
    conversation_id: int | None = None
    recipient_id: int | None = None
    attachment_id: int | None = None
    client_msg_id: str | None = None


# What a send is answered with: (message, created), or the exception to answer it with.
Outcome = tuple[Message, bool] | Exception


@dataclass
class _Draft:
    """An authorised message about to be stored, and the groups its ``chat.message`` goes to."""

    sender: Any
    target: selectors.SendTarget
    content: str
    content_type: str
    client_msg_id: str | None
    attachment: Attachment | None
    groups: list[str]


def _stored_by_key(keys: list[tuple[int, str]]) -> dict[tuple[int, str], Message]:
    """The messages already stored under ``keys`` (sender id, ``client_msg_id``), by key."""
    if not keys:
        return {}
    senders, ids = list({sender for sender, _ in keys}), list({key for _, key in keys})
    with connection.cursor() as cursor:
        senders_in, sender_params = selectors.in_list(senders)
        ids_in, id_params = selectors.in_list(ids)
        cursor.execute(_stored_keys_sql(senders_in, ids_in), [*sender_params, *id_params])
        found_ids = [pk for (pk,) in cursor.fetchall()]
    if not found_ids:
        return {}  # the usual answer, from one plain statement; repeats load their messages below
    # A repeat is answered with the stored message's event: its sender comes in the same query.
    found = for_message_events(Message.objects.filter(pk__in=found_ids))
    return {(m.sender_id, m.client_msg_id): m for m in found}


def _stored_keys_sql(senders_in: str, keys_in: str) -> str:
    quote = connection.ops.quote_name
    meta = Message._meta
    return (
        f"SELECT {quote(meta.pk.column)} FROM {quote(meta.db_table)} "
        f"WHERE {quote(meta.get_field('sender').column)} {senders_in} "
        f"AND {quote(meta.get_field('client_msg_id').column)} {keys_in}"
    )


def _store(drafts: list[_Draft]) -> list[Outcome]:
    # The drafts' conversations are locked (selectors.lock_send_targets): seq is gap-free and
    # strictly increasing per conversation.
    stored = _stored_by_key([(d.sender.pk, d.client_msg_id) for d in drafts if d.client_msg_id])
    used_attachments = set()
    if with_attachment := [d.attachment.pk for d in drafts if d.attachment is not None]:
        used_attachments = set(
            Message.objects.filter(attachment_id__in=with_attachment).values_list("attachment_id", flat=True)
        )
    outcomes: list[Outcome] = []
    new: list[tuple[_Draft, Message]] = []
    for draft in drafts:
        key = (draft.sender.pk, draft.client_msg_id)
        target = draft.target
        if draft.client_msg_id and key in stored:
            outcomes.append((stored[key], False))  # the idempotency key's first message
        elif target.closed:
            outcomes.append(Conflict("This support conversation is closed; open a new one"))
        elif draft.attachment is not None and draft.attachment.pk in used_attachments:
            outcomes.append(
                Conflict("This attachment is already in a message", details={"attachment_id": ["Already sent."]})
            )
        else:
            target.last_seq += 1
            message = Message(
                conversation_id=target.id,
                sender=draft.sender,
                content=draft.content,
                content_type=draft.content_type,
                attachment=draft.attachment,
                client_msg_id=draft.client_msg_id or None,
                seq=target.last_seq,
            )
            new.append((draft, message))
            outcomes.append((message, True))
            if draft.client_msg_id:
                stored[key] = message  # a repeat later in this batch answers with it
            if draft.attachment is not None:
                used_attachments.add(draft.attachment.pk)
    if new:
        _insert(new)
    return outcomes


def _insert(new: list[tuple[_Draft, Message]]) -> None:
    """
    Write ``new``'s messages, their conversations' ``last_seq`` and their senders' read positions,
    and publish each ``chat.message`` after commit.

    Plain SQL from the models' table, column and type names: building the ORM's ``bulk_create``
    and the CASE form of the updates cost more CPU than running them (py-spy, ``make
    bench-chat``). SQLite: the INSERT returning the ids, then the two UPDATEs (executemany).
    PostgreSQL: one statement, the UPDATEs as data-modifying CTEs of the INSERT (each statement
    cost the worker thread about 0.3 ms of psycopg, bench/send_batch.py's batches), taking one
    array per column (``unnest``): the same text whatever the batch's size, where a row of
    placeholders per message made psycopg parse a new query each time.
    """
    created_at = timezone.now()
    stored_at = connection.ops.adapt_datetimefield_value(created_at)
    rows = []  # in _MESSAGE_FIELDS order
    for _, message in new:
        message.created_at = created_at
        rows.append(
            (
                message.conversation_id,
                message.sender_id,
                message.content,
                str(message.content_type),  # a TextChoices member is a str the drivers may not take as one
                message.attachment_id,
                message.seq,
                message.client_msg_id,
                stored_at,
            )
        )
    last_seq = {message.conversation_id: message.seq for _, message in new}
    # A sender has read the conversation up to their own message (never backwards).
    read = {(message.conversation_id, message.sender_id): message.seq for _, message in new}
    sql = _write_sql(connection.vendor)
    with connection.cursor() as cursor:
        if sql.arrays:
            # One statement: the updates as data-modifying CTEs of the INSERT.
            cursor.execute(
                sql.insert,
                [
                    list(last_seq),
                    list(last_seq.values()),
                    [conversation_id for conversation_id, _ in read],
                    [user_id for _, user_id in read],
                    list(read.values()),
                    *(list(column) for column in zip(*rows, strict=True)),
                ],
            )
            ids = {(conversation_id, seq): pk for pk, conversation_id, seq in cursor.fetchall()}
        else:
            cursor.execute(sql.insert.format(values=", ".join([sql.row] * len(rows))), [v for row in rows for v in row])
            ids = {(conversation_id, seq): pk for pk, conversation_id, seq in cursor.fetchall()}
            cursor.executemany(sql.last_seq, [(seq, pk) for pk, seq in last_seq.items()])
            cursor.executemany(
                sql.last_read_seq,
                [(seq, conversation_id, user_id, seq) for (conversation_id, user_id), seq in read.items()],
            )
    for draft, message in new:
        # Matched by (conversation, seq), unique: RETURNING's row order is not promised.
        message.pk = ids[(message.conversation_id, message.seq)]
        message._state.adding = False
        message._state.db = connection.alias
        if draft.target.kind == Conversation.Kind.SUPPORT:
            _support_message_stored(draft.target, message)
        event = message_event(message)
        # In seq order on every process, seed clients included (they cannot reorder by seq).
        order = (conversation_group(message.conversation_id), message.seq)
        for group in draft.groups:
            publish_on_commit(group, "chat.message", event, order=order)


# The message columns ``_insert`` writes, in its order.
_MESSAGE_FIELDS = (
    "conversation",
    "sender",
    "content",
    "content_type",
    "attachment",
    "seq",
    "client_msg_id",
    "created_at",
)


class _WriteSql(NamedTuple):
    arrays: bool  # PostgreSQL: one statement, one array parameter per column
    # Arrays: the conversation ids and their last_seq, the read positions' conversation ids, user
    # ids and seqs, then one array per _MESSAGE_FIELDS. Rows: ``{values}`` is one ``row`` per message.
    insert: str
    # Rows only:
    row: str = ""
    last_seq: str = ""  # last_seq, conversation id (executemany)
    last_read_seq: str = ""  # seq, conversation id, user id, seq (executemany)


@functools.cache
def _write_sql(vendor: str) -> _WriteSql:
    quote = connection.ops.quote_name
    message, conversation, membership = Message._meta, Conversation._meta, Membership._meta

    def column(meta, field: str) -> str:
        return quote(meta.get_field(field).column)

    def array(meta, field: str) -> str:
        return f"%s::{meta.get_field(field).db_type(connection)}[]"

    table = quote(message.db_table)
    insert = f"INSERT INTO {table} ({', '.join(column(message, f) for f in _MESSAGE_FIELDS)}) "
    returning = f" RETURNING {quote(message.pk.column)}, {column(message, 'conversation')}, {column(message, 'seq')}"
    conversations, memberships = quote(conversation.db_table), quote(membership.db_table)
    read = column(membership, "last_read_seq")
    if vendor == "postgresql":
        last_seq = (
            f"UPDATE {conversations} SET {column(conversation, 'last_seq')} = v.seq "
            f"FROM unnest({array(conversation, 'id')}, {array(conversation, 'last_seq')}) AS v(id, seq) "
            f"WHERE {conversations}.{quote(conversation.pk.column)} = v.id"
        )
        last_read_seq = (
            f"UPDATE {memberships} SET {read} = v.seq FROM unnest({array(membership, 'conversation')}, "
            f"{array(membership, 'user')}, {array(membership, 'last_read_seq')}) AS v(conversation, member, seq) "
            f"WHERE {memberships}.{column(membership, 'conversation')} = v.conversation "
            f"AND {memberships}.{column(membership, 'user')} = v.member AND {memberships}.{read} < v.seq"
        )
        return _WriteSql(
            arrays=True,
            insert=f"WITH last_seq AS ({last_seq}), last_read_seq AS ({last_read_seq}) "
            f"{insert}SELECT * FROM unnest({', '.join(array(message, f) for f in _MESSAGE_FIELDS)}){returning}",
        )
    return _WriteSql(
        arrays=False,
        insert=f"{insert}VALUES {{values}}{returning}",
        row=f"({', '.join(['%s'] * len(_MESSAGE_FIELDS))})",
        last_seq=f"UPDATE {conversations} SET {column(conversation, 'last_seq')} = %s "
        f"WHERE {quote(conversation.pk.column)} = %s",
        last_read_seq=f"UPDATE {memberships} SET {read} = %s "
        f"WHERE {column(membership, 'conversation')} = %s AND {column(membership, 'user')} = %s AND {read} < %s",
    )


def _support_message_stored(target: selectors.SendTarget, message: Message) -> None:
    # The user's message starts (or continues) the wait; a staff reply ends it and marks the desk read.
    if message.sender_id == target.support_user_id:
        Conversation.objects.filter(pk=target.id, waiting_since__isnull=True).update(waiting_since=message.created_at)
    else:
        Conversation.objects.filter(pk=target.id).update(waiting_since=None, support_read_seq=message.seq)
    _publish_support_update(target.id)


def _publish_support_update(conversation_id: int) -> None:
    """``support.updated`` (a desk row, selectors.support_entry) to every staff connection, after commit."""

    def send():
        conversation = Conversation.objects.select_related("support_user").get(pk=conversation_id)
        last = for_message_events(conversation.messages.filter(seq=conversation.last_seq)).first()
        publish(support_desk_group(), "support.updated", selectors.support_entry(conversation, last))

    transaction.on_commit(send)


def _one(outcomes: list[Outcome]) -> tuple[Message, bool]:
    (outcome,) = outcomes
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def send_message(
    *,
    sender,
    conversation: Conversation,
    content: str,
    content_type: str = Message.ContentType.TEXT,
    client_msg_id: str | None = None,
    attachment: Attachment | None = None,
) -> tuple[Message, bool]:
    """
    Send ``content`` from ``sender`` to ``conversation`` through the one checked path
    (``send_many``: the sender must be a member, or staff in a support conversation) and
    publish ``chat.message`` after commit. Return ``(message, created)``; raise the refusal.

    ``seq`` is strictly increasing per conversation. A repeated ``client_msg_id`` from the same
    sender returns the stored message with ``created`` False and publishes nothing (idempotency
    key, docs/protocol.md). Content rules are the serializers' (chat/serializers.py), checked by
    the caller; an image or file message carries ``attachment`` (an upload of the sender's not
    yet sent). Support messages also update the desk (``support.updated`` to staff).
    """
    return send_as(
        sender,
        conversation_id=conversation.pk,
        content=content,
        content_type=content_type,
        client_msg_id=client_msg_id,
        attachment_id=attachment.pk if attachment is not None else None,
    )


def send_many(requests: list[SendRequest]) -> list[Outcome]:
    """
    Authorise and store each of ``requests`` in order, all in one transaction (``chat.send``'s
    group commit, realtime.delivery.group_commit), and publish each new ``chat.message`` after commit.

    Return one outcome per request: ``(message, created)`` as ``send_message`` returns, or the
    ``ProtocolError`` refusing that request alone (``NotFound``, also for a conversation the
    sender may not see; ``Invalid``; ``Conflict``; it stores nothing). An image or file without
    a caption is captioned with its file name. Raise the database's error if the transaction
    fails: then nothing is stored.

    A concurrent retry from another process that stored an idempotency key first (the unique
    constraint) rolls the lot back; each request is then sent alone, the repeat answered with
    the stored message (an integrity error that is not a repeat is that request's outcome).

    Statements, whatever the number of requests: the conversations locked with the senders'
    memberships (selectors.lock_send_targets), the idempotency keys already stored, the insert
    and two updates (``_insert``); attachments and direct conversations add their own. No
    savepoint: the rare rollback retries the whole transaction instead.
    """
    if not requests:
        return []
    try:
        with transaction.atomic():
            return _send_all(requests)
    except IntegrityError:
        if len(requests) > 1:
            return [_send_alone(request) for request in requests]
        (request,) = requests
        existing = (
            _stored_by_key([(request.sender.pk, request.client_msg_id)]).get((request.sender.pk, request.client_msg_id))
            if request.client_msg_id
            else None
        )
        if existing is None:
            raise
        return [(existing, False)]


def _send_alone(request: SendRequest) -> Outcome:
    try:
        return send_many([request])[0]
    except IntegrityError as exc:
        return exc


def _send_all(requests: list[SendRequest]) -> list[Outcome]:
    # send_many's work inside its transaction.
    outcomes: list[Outcome | None] = [None] * len(requests)
    resolved: list[tuple[int, SendRequest, int, Attachment | None, list[str] | None]] = []
    for i, request in enumerate(requests):
        try:
            resolved.append((i, request, *_resolve(request)))
        except ProtocolError as exc:
            outcomes[i] = exc
    targets = selectors.lock_send_targets([(request.sender, cid) for _, request, cid, _, _ in resolved])
    drafts: list[tuple[int, _Draft]] = []
    for (i, request, conversation_id, attachment, groups), target in zip(resolved, targets, strict=True):
        if isinstance(target, ProtocolError):
            outcomes[i] = target
            continue
        draft = _Draft(
            sender=request.sender,
            target=target,
            content=request.content or (attachment.name if attachment else ""),
            content_type=request.content_type,
            client_msg_id=request.client_msg_id,
            attachment=attachment,
            groups=groups or [conversation_group(conversation_id)],
        )
        drafts.append((i, draft))
    for (i, _), outcome in zip(drafts, _store([draft for _, draft in drafts]) if drafts else [], strict=True):
        outcomes[i] = outcome
    return outcomes


def _resolve(request: SendRequest) -> tuple[int, Attachment | None, list[str] | None]:
    """
    The request's conversation id, its attachment, and the groups its message goes to when not
    the conversation's; raise the ProtocolError refusing it (the attachment's first).
    """
    attachment = (
        selectors.usable_attachment(request.sender, request.attachment_id, request.content_type)
        if request.attachment_id
        else None
    )
    if request.recipient_id is None:
        return request.conversation_id, attachment, None
    recipient = selectors.access_recipient(request.sender, request.recipient_id)
    conversation, new_direct = get_or_create_direct_conversation(user=request.sender, other=recipient)
    # The first message of a new direct conversation goes to both users' groups: their processes
    # are not in the new conversation's group until the subscription sent just before it is
    # applied, and the user groups carry both in order.
    groups = [user_group(request.sender.pk), user_group(recipient.pk)] if new_direct else None
    return conversation.pk, attachment, groups


def send_as(user, **fields) -> tuple[Message, bool]:
    """
    One send from ``user`` with the fields of serializers.SendMessageIn (REST, the admin,
    ``send_message``): ``send_many`` for one request; return ``(message, created)`` or raise its
    refusal.
    """
    return _one(send_many([SendRequest(sender=user, **fields)]))


def upload_attachment(*, uploader, file, mime_type: str) -> Attachment:
    """
    Store an uploaded image or file through Django's storage API (validated by
    serializers.AttachmentIn) and return its ``Attachment``; a message references it later.
    """
    return Attachment.objects.create(
        uploader=uploader, file=file, name=file.name[:255], mime_type=mime_type, size=file.size
    )


def create_group(*, owner, title: str, member_ids: list[int]) -> Conversation:
    """
    Create a group conversation owned by ``owner`` with the active users ``member_ids``.

    Every member's open connections subscribe after commit and receive one ``chat.member_added``
    ``{conversation, user_id, role, by}`` (``user_id`` and ``role`` their own). Raise ``NotFound``
    for an unknown or inactive user.
    """
    with transaction.atomic():
        conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title=title)
        members = [owner] + [selectors.access_user(uid) for uid in dict.fromkeys(member_ids) if uid != owner.pk]
        Membership.objects.bulk_create(
            [
                Membership(
                    conversation=conversation,
                    user=user,
                    role=Membership.Role.OWNER if user.pk == owner.pk else Membership.Role.MEMBER,
                )
                for user in members
            ]
        )
        summary = conversation_summary(conversation)
        roles = {member["user_id"]: member["role"] for member in summary["members"]}
        for user in members:
            # The same shape as add_member's event: a client reads the newcomer's role from it.
            event = {"conversation": summary, "user_id": user.pk, "role": roles[user.pk], "by": owner.pk}
            subscribe_user_on_commit(
                user_group(user.pk), conversation_group(conversation.pk), event=("chat.member_added", event)
            )
    return conversation


def _require_group_manager(actor, conversation: Conversation) -> Membership | None:
    # The owner and admins manage a group's members; actor None is the admin site (staff).
    if conversation.kind != Conversation.Kind.GROUP:
        raise Invalid(
            "Only group conversations have members to manage",
            details={"conversation_id": [f"Is a {conversation.kind} conversation."]},
        )
    if actor is None:
        return None
    membership = selectors.membership_of(actor, conversation)
    if membership is None or membership.role not in (Membership.Role.OWNER, Membership.Role.ADMIN):
        raise Forbidden("Only the group's owner and admins manage its members")
    return membership


def _require_assignable(role: str) -> None:
    # The roles a member can be given; the owner's passes only when the owner leaves.
    if role not in (Membership.Role.MEMBER, Membership.Role.ADMIN):
        raise Invalid("role must be member or admin", details={"role": [f'"{role}" is not a valid choice.']})


def add_member(*, actor, conversation: Conversation, user, role: str = Membership.Role.MEMBER) -> Membership:
    """
    Add ``user`` to the group ``conversation`` as ``role`` (member or admin). ``actor`` must be its
    owner or an admin (only the owner names admins); ``None`` is the admin site.

    The members get ``chat.member_added {conversation, user_id, role, by}``; the newcomer's open
    connections subscribe after commit and get the same event once. Adding a member again
    changes nothing and publishes nothing. Raise ``Forbidden``/``Invalid`` as documented in
    docs/protocol.md.
    """
    _require_assignable(role)
    with transaction.atomic():
        manager = _require_group_manager(actor, conversation)
        if role == Membership.Role.ADMIN and manager is not None and manager.role != Membership.Role.OWNER:
            raise Forbidden("Only the owner names admins")
        membership, created = Membership.objects.get_or_create(
            conversation=conversation, user=user, defaults={"role": role}
        )
        if created:
            event = {
                "conversation": conversation_summary(conversation),
                "user_id": user.pk,
                "role": role,
                "by": actor.pk if actor else None,
            }
            # Existing members through the group (the newcomer is not subscribed yet), then the newcomer.
            publish_on_commit(conversation_group(conversation.pk), "chat.member_added", event)
            subscribe_user_on_commit(
                user_group(user.pk), conversation_group(conversation.pk), event=("chat.member_added", event)
            )
    return membership


def change_role(*, actor, conversation: Conversation, user_id: int, role: str) -> Membership:
    """
    Make the member ``user_id`` of the group ``conversation`` a plain ``member`` or an ``admin``.
    ``actor`` must be the group's owner (only the owner names admins); ``None`` is the admin site.

    The members get ``chat.member_role_changed {conversation_id, user_id, role, by}``; a role set
    to what it already is publishes nothing. Raise ``Invalid`` for another role or for the owner
    (ownership passes only when the owner leaves), ``Forbidden`` for an actor who is not the
    owner, ``NotFound`` if ``user_id`` is not a member.
    """
    _require_assignable(role)
    with transaction.atomic():
        manager = _require_group_manager(actor, conversation)
        if manager is not None and manager.role != Membership.Role.OWNER:
            raise Forbidden("Only the owner names admins")
        target = Membership.objects.select_for_update().filter(conversation=conversation, user_id=user_id).first()
        if target is None:
            raise NotFound("Not a member of this conversation")
        if target.role == Membership.Role.OWNER:
            raise Invalid(
                "The owner's role cannot be changed",
                details={"role": ["The owner stays owner until they leave the group."]},
            )
        if target.role != role:
            target.role = role
            target.save(update_fields=["role"])
            event = {
                "conversation_id": conversation.pk,
                "user_id": user_id,
                "role": role,
                "by": actor.pk if actor else None,
            }
            publish_on_commit(conversation_group(conversation.pk), "chat.member_role_changed", event)
    return target


def remove_member(*, actor, conversation: Conversation, user_id: int) -> None:
    """
    Remove ``user_id`` from the group ``conversation``: a member removing themselves leaves;
    otherwise ``actor`` must be the owner (anyone) or an admin (plain members only); ``None`` is
    the admin site. When the owner leaves, the longest-standing admin, else member, becomes owner.

    Every member, the removed one included, gets ``chat.member_removed {conversation_id, user_id,
    by, owner_id}``; then the removed user's connections leave the conversation's groups. Raise
    ``NotFound`` if ``user_id`` is not a member.
    """
    with transaction.atomic():
        leaving = actor is not None and actor.pk == user_id
        if conversation.kind != Conversation.Kind.GROUP:
            raise Invalid(
                "Only group conversations have members to manage",
                details={"conversation_id": [f"Is a {conversation.kind} conversation."]},
            )
        manager = None if leaving else _require_group_manager(actor, conversation)
        target = Membership.objects.select_for_update().filter(conversation=conversation, user_id=user_id).first()
        if target is None:
            raise NotFound("Not a member of this conversation")
        if manager is not None and manager.role == Membership.Role.ADMIN and target.role != Membership.Role.MEMBER:
            raise Forbidden("Admins remove plain members only")
        target.delete()
        owner_id = _ensure_owner(conversation)
        event = {
            "conversation_id": conversation.pk,
            "user_id": user_id,
            "by": actor.pk if actor else None,
            "owner_id": owner_id,
        }
        publish_on_commit(conversation_group(conversation.pk), "chat.member_removed", event)
        for group in (conversation_group(conversation.pk), viewers_group(conversation.pk)):
            unsubscribe_user_on_commit(user_group(user_id), group)


def _ensure_owner(conversation: Conversation) -> int | None:
    # A group keeps an owner while it has members: promote the longest-standing admin, else member.
    memberships = conversation.memberships.order_by("joined_at", "pk")
    owner = memberships.filter(role=Membership.Role.OWNER).first()
    if owner is None:
        owner = memberships.filter(role=Membership.Role.ADMIN).first() or memberships.first()
        if owner is None:
            return None
        owner.role = Membership.Role.OWNER
        owner.save(update_fields=["role"])
    return owner.user_id


def open_support(*, user) -> tuple[Conversation, bool]:
    """
    Return ``user``'s open support conversation, creating it (and subscribing their connections)
    when they have none; and whether it was created. One open per user, kept by a conditional
    unique constraint even under concurrent calls.
    """
    existing = Conversation.objects.filter(
        kind=Conversation.Kind.SUPPORT, support_user=user, closed_at__isnull=True
    ).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.SUPPORT, support_user=user, title=f"Support: {user.get_username()}"
            )
            Membership.objects.create(conversation=conversation, user=user)
            subscribe_user_on_commit(user_group(user.pk), conversation_group(conversation.pk))
    except IntegrityError:
        return Conversation.objects.get(
            kind=Conversation.Kind.SUPPORT, support_user=user, closed_at__isnull=True
        ), False
    return conversation, True


def close_support(*, conversation: Conversation) -> None:
    """
    Close an open support conversation (staff): no more messages; the user's next support
    request opens a new one. Members and the desk get ``support.closed {conversation_id}``.
    """
    if conversation.kind != Conversation.Kind.SUPPORT:
        raise Invalid("Only support conversations close", details={"conversation_id": ["Not a support conversation."]})
    with transaction.atomic():
        closed = Conversation.objects.filter(pk=conversation.pk, closed_at__isnull=True).update(
            closed_at=timezone.now(), waiting_since=None
        )
        if closed:
            data = {"conversation_id": conversation.pk}
            publish_on_commit(conversation_group(conversation.pk), "support.closed", data)
            publish_on_commit(support_desk_group(), "support.closed", data)


def mark_read(*, user, conversation: Conversation, seq: int) -> tuple[int, int]:
    """
    Record that ``user`` (a member) has read ``conversation`` up to ``seq`` (clamped to its
    last message) and tell the members with ``chat.read {conversation_id, user_id, name, seq}``
    (``name``: the reader's display name).
    Never moves backwards: an older seq changes and publishes nothing. Return the stored
    ``(last_read_seq, unread)``. Staff reading a support conversation they are not a member of
    move the desk's shared read mark instead.
    """
    with transaction.atomic():
        last_seq = Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation.pk)
        seq = min(seq, last_seq)
        if (
            conversation.kind == Conversation.Kind.SUPPORT
            and user.is_staff
            and selectors.membership_of(user, conversation) is None
        ):
            return _mark_desk_read(conversation, seq, last_seq)
        moved = Membership.objects.filter(conversation=conversation, user=user, last_read_seq__lt=seq).update(
            last_read_seq=seq
        )
        if moved:
            publish_on_commit(
                conversation_group(conversation.pk),
                "chat.read",
                {"conversation_id": conversation.pk, "user_id": user.pk, "name": display_name(user), "seq": seq},
            )
        read_seq = Membership.objects.values_list("last_read_seq", flat=True).get(conversation=conversation, user=user)
        return read_seq, last_seq - read_seq


def _mark_desk_read(conversation: Conversation, seq: int, last_seq: int) -> tuple[int, int]:
    moved = Conversation.objects.filter(pk=conversation.pk, support_read_seq__lt=seq).update(support_read_seq=seq)
    if moved:
        publish_on_commit(
            conversation_group(conversation.pk),
            "chat.read",
            {"conversation_id": conversation.pk, "user_id": None, "name": None, "seq": seq},
        )
        _publish_support_update(conversation.pk)
    read_seq = Conversation.objects.values_list("support_read_seq", flat=True).get(pk=conversation.pk)
    return read_seq, last_seq - read_seq
