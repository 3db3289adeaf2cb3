"""Chat read paths and access checks."""

import bisect
import functools
import operator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, F, Q
from django.db.models.functions import Lower

from realtime.delivery import presence_of
from realtime.errors import Invalid, NotFound, ProtocolError
from realtime.paging import Page, decode_cursor, encode_cursor, fitting, paged
from realtime.users import display_name, user_fields, user_ref
from realtime.validation import MAX_ID

from .events import (
    conversation_summary,
    for_message_events,
    member_rows,
    members_of_conversations,
    message_event,
)
from .models import Attachment, Conversation, Membership, Message


def access_conversation(user, conversation_id: int) -> Conversation:
    """
    Return the conversation if ``user`` may read and write it: a member, or a staff member for a
    support conversation (seed 002: any staff member may read, join and reply).

    Raise ``NotFound("Conversation not found")`` if no conversation has that id or ``user`` may not
    see it: the two answers are identical, so ids reveal nothing (docs/protocol.md, "not_found or
    forbidden").
    """
    (outcome,) = access_conversations([(user, conversation_id)])
    if isinstance(outcome, ProtocolError):
        raise outcome
    return outcome


def access_conversations(requests: list[tuple]) -> list[Conversation | ProtocolError]:
    """
    ``access_conversation`` for each ``(user, conversation_id)`` of ``requests``, in two queries
    whatever their number: the conversation, or the ``NotFound`` to answer with.
    """
    ids = {conversation_id for _, conversation_id in requests}
    conversations = Conversation.objects.in_bulk(ids)
    members = set(
        Membership.objects.filter(conversation_id__in=ids, user_id__in={user.pk for user, _ in requests}).values_list(
            "conversation_id", "user_id"
        )
    )
    return _access_outcomes(requests, conversations, members)


def _access_outcomes(requests: list[tuple], found: dict, members: set[tuple[int, int]]) -> list:
    """
    Per ``(user, conversation_id)`` of ``requests``: ``found[conversation_id]`` (a Conversation
    or a SendTarget) when ``user`` may access it, members being ``(conversation_id, user_id)``
    pairs; else the ``NotFound`` to answer with.
    """
    outcomes = []
    for user, conversation_id in requests:
        item = found.get(conversation_id)
        if item is not None and _may_access(user, item.kind, (conversation_id, user.pk) in members):
            outcomes.append(item)
        else:
            # Unknown and not visible answer alike (docs/protocol.md, "not_found or forbidden").
            outcomes.append(conversation_not_found())
    return outcomes


def _may_access(user, kind: str, is_member: bool) -> bool:
    # Members, and any staff member in a support conversation (seed 002).
    return is_member or (kind == Conversation.Kind.SUPPORT and user.is_staff)


@dataclass(slots=True)
class SendTarget:
    """
    A conversation as ``chat.send`` writes to it (services.send_many), read under its write lock:
    ``last_seq`` its newest message's seq (the caller advances it as it stores), ``closed`` a
    closed support conversation.
    """

    id: int
    kind: str
    last_seq: int
    support_user_id: int | None
    closed: bool


def lock_send_targets(requests: list[tuple]) -> list[SendTarget | ProtocolError]:
    """
    ``access_conversation``'s rule for each ``(user, conversation_id)`` of ``requests``, the
    conversations read and locked for writing in one statement whatever their number: the
    ``SendTarget`` (one per conversation, shared by its requests) or the ``NotFound`` to answer
    with. Call it inside the transaction that writes.

    Locks: on PostgreSQL the conversation rows, in id order (``FOR UPDATE``), so seq stays
    gap-free and two batches never wait on each other in a cycle; on SQLite the IMMEDIATE
    transaction already holds the database's write lock.

    SQL from the models' table and column names instead of the ORM: building the ORM's two
    queries (access, then the lock) cost more CPU than running them (bench/send_batch.py).
    """
    if not requests:
        return []
    ids = list({conversation_id for _, conversation_id in requests})
    user_ids = list({user.pk for user, _ in requests})
    with connection.cursor() as cursor:
        users_in, user_params = in_list(user_ids)
        ids_in, id_params = in_list(ids)
        cursor.execute(_lock_sql(users_in, ids_in), [*user_params, *id_params])
        rows = cursor.fetchall()
    targets: dict[int, SendTarget] = {}
    members = set()
    for conversation_id, kind, last_seq, support_user_id, closed, member_id in rows:
        if conversation_id not in targets:
            targets[conversation_id] = SendTarget(conversation_id, kind, last_seq, support_user_id, bool(closed))
        members.add((conversation_id, member_id))
    return _access_outcomes(requests, targets, members)


def _lock_sql(users_in: str, ids_in: str) -> str:
    # Each conversation, with each requesting user who is a member of it (NULL for none).
    quote = connection.ops.quote_name

    def c(field: str) -> str:
        return f"c.{quote(Conversation._meta.get_field(field).column)}"

    def m(field: str) -> str:
        return f"m.{quote(Membership._meta.get_field(field).column)}"

    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {c('id')}, {c('kind')}, {c('last_seq')}, {c('support_user')}, {c('closed_at')} IS NOT NULL, "
        f"{m('user')} FROM {quote(Conversation._meta.db_table)} c LEFT JOIN {quote(Membership._meta.db_table)} m "
        f"ON {m('conversation')} = {c('id')} AND {m('user')} {users_in} "
        f"WHERE {c('id')} {ids_in} ORDER BY {c('id')}{lock}"
    )


def in_list(values: list) -> tuple[str, list]:
    """
    ``IN (...)`` for ``values`` in plain SQL, and its parameters: on PostgreSQL ``= ANY(%s)`` with
    one array, so that the statement's text does not depend on how many (psycopg parses again a
    statement of more than 50 parameters each time it runs); one placeholder per value elsewhere.
    """
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [list(values)]
    return f"IN ({', '.join(['%s'] * len(values))})", list(values)


def conversation_not_found() -> NotFound:
    """The one answer for a conversation id that does not exist or that the user may not see."""
    return NotFound("Conversation not found")


def membership_of(user, conversation: Conversation) -> Membership | None:
    """``user``'s membership of ``conversation``, or None (staff reading a support conversation)."""
    return Membership.objects.filter(conversation=conversation, user=user).first()


def access_user(user_id: int):
    """Return the active user ``user_id``; raise ``NotFound`` if absent or inactive."""
    found = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if found is None:
        raise NotFound("User not found")
    return found


# At most this many people per search (issue 24): enough to pick from, small enough to show.
PEOPLE_SEARCH_LIMIT = 20


def search_people(user, query: str) -> list[dict]:
    """
    The people ``user`` may find to start a direct chat or add to a group (``GET /api/users/``):
    active users other than ``user`` (the users ``access_recipient`` and ``add_member`` accept,
    so every client sees the same set) such that every word of ``query`` is part of their
    username, first name or last name (case-insensitive; e-mail addresses are never searched).
    At most ``PEOPLE_SEARCH_LIMIT``, by username; each ``{"id", "username", "name", "is_staff"}``
    (``name``: realtime.users.display_name). One query.
    """
    people = get_user_model().objects.filter(is_active=True).exclude(pk=user.pk)
    for word in query.split():
        people = people.filter(
            Q(username__icontains=word) | Q(first_name__icontains=word) | Q(last_name__icontains=word)
        )
    found = people.only("pk", *user_fields()).order_by(Lower("username"), "pk")[:PEOPLE_SEARCH_LIMIT]
    return [{**user_ref(person), "username": person.get_username()} for person in found]


def access_attachment(user, attachment_id: int) -> Attachment:
    """
    Return the attachment if ``user`` uploaded it or may read the conversation of the message
    that references it. Raise ``NotFound`` otherwise, whether or not it exists (an attachment
    id reveals nothing).
    """
    attachment = Attachment.objects.filter(pk=attachment_id).select_related("message").first()
    if attachment is not None:
        if attachment.uploader_id == user.pk:
            return attachment
        message = getattr(attachment, "message", None)
        if message is not None:
            try:
                access_conversation(user, message.conversation_id)
                return attachment
            except NotFound:
                pass
    raise NotFound("Attachment not found")


def usable_attachment(user, attachment_id: int, content_type: str) -> Attachment:
    """
    Return ``user``'s upload ``attachment_id`` for a new message of ``content_type``. Raise
    ``NotFound`` if it is not theirs, ``Invalid`` if an image message names a non-image.
    (Whether another message already uses it is checked under the write lock, services.)
    """
    attachment = Attachment.objects.filter(pk=attachment_id, uploader=user).first()
    if attachment is None:
        raise NotFound("Attachment not found")
    if content_type == Message.ContentType.IMAGE and not attachment.mime_type.startswith("image/"):
        raise Invalid("An image message needs an image", details={"attachment_id": ["Is not an image."]})
    return attachment


def support_queue() -> list[dict]:
    """
    Open support conversations for the support desk, who waits longest first (``waiting_since``
    ascending, then those nobody waits on, most recent first). Each: ``conversation_id``,
    ``user`` {id, username, name}, ``waiting_since`` (epoch ms or None), ``unread`` (messages after the
    desk's read mark), ``last_seq``, ``closed``, ``last_message``. Two queries.
    """
    conversations = list(
        Conversation.objects.filter(kind=Conversation.Kind.SUPPORT, closed_at__isnull=True)
        .select_related("support_user")
        .order_by(F("waiting_since").asc(nulls_last=True), "-last_seq", "pk")
    )
    last_messages = _last_messages(conversations)
    return [support_entry(c, last_messages.get(c.pk)) for c in conversations]


def support_entry(conversation: Conversation, last_message: Message | None) -> dict:
    """One support-desk row (see ``support_queue``); also the ``support.updated`` payload."""
    user = conversation.support_user
    return {
        "conversation_id": conversation.pk,
        "user": {"id": user.pk, "username": user.get_username(), "name": display_name(user)},
        "waiting_since": int(conversation.waiting_since.timestamp() * 1000) if conversation.waiting_since else None,
        "unread": conversation.last_seq - conversation.support_read_seq,
        "last_seq": conversation.last_seq,
        "closed": conversation.closed_at is not None,
        "last_message": message_event(last_message) if last_message else None,
    }


def _last_messages(conversations: list[Conversation]) -> dict[int, Message]:
    last = Q(pk__in=[])
    for conversation in conversations:
        if conversation.last_seq:
            last |= Q(conversation_id=conversation.pk, seq=conversation.last_seq)
    return {m.conversation_id: m for m in for_message_events(Message.objects.filter(last))}


def access_recipient(sender, recipient_id: int):
    """
    Return the active user ``recipient_id``; raise ``NotFound`` if absent or inactive, ``Invalid`` if it is the sender.
    """
    if recipient_id == sender.pk:
        raise Invalid("Cannot start a direct conversation with yourself", details={"recipient_id": ["Is yourself."]})
    return access_user(recipient_id)


def conversation_ids_for(user) -> list[int]:
    """Return the ids of every conversation ``user`` is a member of."""
    return list(Membership.objects.filter(user=user).values_list("conversation_id", flat=True))


# Most recent activity first, the id breaking ties: a total order, so pages neither skip nor repeat.
_CONVERSATION_ORDER = ("-conversation__last_seq", "-conversation_id")


def conversations_for(user) -> list[dict]:
    """
    ``user``'s conversations, most recent activity first, each as its summary plus ``last_message``
    (or None), ``last_read_seq`` and ``unread`` (messages after ``last_read_seq``); each member
    carries ``online`` (the connection registry). Three queries and one registry read.
    """
    memberships = list(
        Membership.objects.filter(user=user).select_related("conversation").order_by(*_CONVERSATION_ORDER)
    )
    return _conversation_entries(memberships)


def conversation_page(user, *, limit: int, cursor: str | None) -> Page:
    """
    A page of ``conversations_for(user)`` (``last_seq`` descending, then id descending) after
    ``cursor`` (realtime/paging.py; ``Invalid`` when malformed). Three queries and one registry read.
    """
    after = decode_cursor("conversations", cursor, 2)
    memberships = Membership.objects.filter(user=user)
    if after is not None:
        last_seq, conversation_id = after
        memberships = memberships.filter(
            Q(conversation__last_seq__lt=last_seq)
            | Q(conversation__last_seq=last_seq, conversation_id__lt=conversation_id)
        )
    rows = list(memberships.select_related("conversation").order_by(*_CONVERSATION_ORDER)[: limit + 1])
    return paged(
        "conversations",
        rows,
        limit,
        key=lambda m: (m.conversation.last_seq, m.conversation_id),
        render=_conversation_entries,
    )


def _conversation_entries(memberships: list[Membership]) -> list[dict]:
    conversations = [m.conversation for m in memberships]
    last_messages = _last_messages(conversations)
    members = members_of_conversations([c.pk for c in conversations])
    presence = presence_of({member["user_id"] for listed in members.values() for member in listed})
    for listed in members.values():
        for member in listed:
            member["online"] = presence.get(member["user_id"], {}).get("online", False)
    return [
        {
            **conversation_summary(m.conversation, members[m.conversation_id]),
            "last_message": message_event(last_messages[m.conversation_id])
            if m.conversation_id in last_messages
            else None,
            "last_read_seq": m.last_read_seq,
            "unread": m.conversation.last_seq - m.last_read_seq,
        }
        for m in memberships
    ]


def small_conversation_ids(user_id: int, max_members: int) -> list[int]:
    """Ids of ``user_id``'s conversations that have at most ``max_members`` members."""
    # Annotate before filtering on memberships: after it, Count would see the filtered join (1 row).
    return list(
        Conversation.objects.annotate(size=Count("memberships", distinct=True))
        .filter(size__lte=max_members, memberships__user_id=user_id)
        .values_list("pk", flat=True)
    )


def messages_before(conversation: Conversation, before_seq: int | None, limit: int) -> tuple[list[Message], bool]:
    """
    Return up to ``limit`` messages with ``seq < before_seq`` (newest page), in seq order, and whether older ones exist.
    """
    queryset = for_message_events(conversation.messages.all())
    if before_seq is not None:
        queryset = queryset.filter(seq__lt=before_seq)
    rows = list(queryset.order_by("-seq")[: limit + 1])
    return rows[:limit][::-1], len(rows) > limit


class JoinRequest(NamedTuple):
    """One ``chat.join``: the caller, the conversation, and the resume asked for (``after_seq`` None: none)."""

    user: Any
    conversation_id: int
    after_seq: int | None
    limit: int


def join_replies(requests: list[JoinRequest]) -> list[dict | ProtocolError]:
    """
    ``chat.join``'s ack data for each of ``requests`` (docs/protocol.md, "chat.join"), or the
    ``NotFound`` to answer it with (``access_conversation``'s rule): ``{"conversation": <summary>,
    "read_positions"}``, and for a resume (``after_seq``) ``"messages"`` (those after ``after_seq``
    in seq order, at most ``limit``, the oldest that fit the page's byte budget less the rest of the
    reply: realtime/paging.py) and ``"has_more"``.

    ``read_positions``: how far each member has read, ``[{"user_id", "seq"}...]`` by user id,
    ``seq`` their ``last_read_seq`` (0: nothing read); a support conversation adds the desk's shared
    mark as ``{"user_id": None, "seq": support_read_seq}``. The state ``chat.read`` events change,
    so a page that (re)loads shows "Seen by ..." without having seen those events (issue 24).

    Three queries whatever the number of requests (the conversations; the members, with their
    users and read positions, of those a caller may see: events.member_rows; the messages of every
    resume, ``_resume_pages``, none when every resume is up to date), and one more per resume over
    deleted messages. What requests share (a conversation's summary, a message's event) is built
    once: a reconnect storm's joins come in batches (chat.handlers.join).
    """
    conversations = Conversation.objects.in_bulk({request.conversation_id for request in requests})
    members = _members_of_visible(requests, conversations)
    pairs = {(conversation_id, entry["user_id"]) for conversation_id, listed in members.items() for _, entry in listed}
    allowed = [
        (request.conversation_id, request.user.pk) in pairs or _staff_opens_support(request, conversations)
        for request in requests
    ]
    resumed = iter(
        _resume_pages(
            [
                (conversations[request.conversation_id], request.after_seq, request.limit)
                for request, ok in zip(requests, allowed, strict=True)
                if ok and request.after_seq is not None
            ]
        )
    )
    views: dict[int, tuple[dict, int]] = {}  # conversation id -> (reply without messages, its encoded size)
    events: dict[int, dict] = {}  # message id -> its event
    replies: list[dict | ProtocolError] = []
    for request, ok in zip(requests, allowed, strict=True):
        if not ok:
            # Unknown and not visible answer alike (docs/protocol.md, "not_found or forbidden").
            replies.append(conversation_not_found())
            continue
        if request.conversation_id not in views:
            view = _join_view(conversations[request.conversation_id], members.get(request.conversation_id, []))
            views[request.conversation_id] = view, len(orjson.dumps(view))
        view, size = views[request.conversation_id]
        if request.after_seq is None:
            replies.append(dict(view))
            continue
        messages, has_more = next(resumed)
        for message in messages:
            if message.pk not in events:
                events[message.pk] = message_event(message)
        page = [events[message.pk] for message in messages]
        # The page of messages is cut to fit in one frame along with the summary.
        kept = fitting(page, reserved_bytes=size)
        replies.append({**view, "messages": page[:kept], "has_more": has_more or kept < len(page)})
    return replies


def _staff_opens_support(request: JoinRequest, conversations: dict[int, Conversation]) -> bool:
    conversation = conversations.get(request.conversation_id)
    return conversation is not None and conversation.kind == Conversation.Kind.SUPPORT and request.user.is_staff


def _members_of_visible(
    requests: list[JoinRequest], conversations: dict[int, Conversation]
) -> dict[int, list[tuple[int, dict]]]:
    """
    ``{conversation_id: [(last_read_seq, member entry)...]}`` (events.member_rows) of the requested
    ``conversations`` that some caller is a member of, or that a staff caller asks for as a support
    conversation: one that a caller may not see costs no more than one that does not exist (ids
    reveal nothing, not even by time).
    """
    members: dict[int, list[tuple[int, dict]]] = {}
    for conversation_id, last_read_seq, entry in member_rows(
        list(conversations),
        seen_by={request.user.pk for request in requests},
        support_ids={r.conversation_id for r in requests if _staff_opens_support(r, conversations)},
    ):
        members.setdefault(conversation_id, []).append((last_read_seq, entry))
    return members


def _join_view(conversation: Conversation, members: list[tuple[int, dict]]) -> dict:
    positions = [{"user_id": entry["user_id"], "seq": last_read_seq} for last_read_seq, entry in members]
    if conversation.kind == Conversation.Kind.SUPPORT:
        positions.append({"user_id": None, "seq": conversation.support_read_seq})
    return {
        "conversation": conversation_summary(conversation, [entry for _, entry in members]),
        "read_positions": positions,
    }


def _resume_pages(resumes: list[tuple[Conversation, int, int]]) -> list[tuple[list[Message], bool]]:
    """
    For each ``(conversation, after_seq, limit)``: up to ``limit`` messages with ``seq > after_seq``
    in seq order (loaded with ``for_message_events``), and whether more follow. One query for all.

    A conversation's seqs are 1, 2, 3... (services), so its messages after ``after_seq`` are those
    of seq ``after_seq + 1 .. after_seq + limit + 1`` (the last only says that more follow): a range
    of the (conversation, seq) index for each resume (those of one conversation that overlap read
    as one), all in one query, where ``ORDER BY seq LIMIT`` would take a query each. A window
    function (ROW_NUMBER per conversation) would also be one query, but it reads every message
    after ``after_seq``, however many. Deleted messages (their sender's account deleted: CASCADE)
    leave holes in the seqs: a range that is not whole and does not reach the conversation's
    ``last_seq`` is read again with ``LIMIT``, one query more.

    A resume from the conversation's ``last_seq`` (as read with ``conversation``) or later reads
    nothing: an empty page. A message stored since then is the caller's as a live ``chat.message``
    (members follow their conversations from their session's start; docs/protocol.md, "Resume").
    """
    spans: dict[int, list[list[int]]] = {}  # conversation id -> merged [after, last seq] ranges
    behind = [resume for resume in resumes if resume[1] < resume[0].last_seq]
    for conversation, after_seq, limit in sorted(behind, key=lambda r: (r[0].pk, r[1])):
        merged = spans.setdefault(conversation.pk, [])
        last = min(after_seq + limit + 1, MAX_ID)
        if merged and after_seq <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([after_seq, last])
    read: dict[int, list[Message]] = {}
    if spans:
        ranges = functools.reduce(
            operator.or_,
            (
                Q(conversation_id=conversation_id, seq__gt=after_seq, seq__lte=last)
                for conversation_id, merged in spans.items()
                for after_seq, last in merged
            ),
        )
        for message in for_message_events(Message.objects.filter(ranges)).order_by("conversation_id", "seq"):
            read.setdefault(message.conversation_id, []).append(message)
    seqs = {conversation_id: [m.seq for m in messages] for conversation_id, messages in read.items()}
    pages = []
    for conversation, after_seq, limit in resumes:
        if after_seq >= conversation.last_seq:
            pages.append(([], False))
            continue
        found = seqs.get(conversation.pk, [])
        start = bisect.bisect_right(found, after_seq)
        rows = read.get(conversation.pk, [])[start : bisect.bisect_right(found, after_seq + limit + 1, lo=start)]
        whole = not rows or rows[-1].seq - after_seq == len(rows)
        if not (whole and (len(rows) > limit or after_seq + len(rows) >= conversation.last_seq)):
            after = conversation.messages.filter(seq__gt=after_seq)
            rows = list(for_message_events(after).order_by("seq")[: limit + 1])
        pages.append((rows[:limit], len(rows) > limit))
    return pages


def history_page(
    conversation: Conversation, *, limit: int, before_seq: int | None = None, cursor: str | None = None
) -> dict:
    """
    ``chat.history``'s ack data: the newest ``limit`` messages before ``before_seq`` or ``cursor``
    (at most one of them; neither: the newest page), in seq order, cut to a page's byte budget
    (the newest that fit); ``has_more`` and ``next_cursor`` (null at the start) reach older ones.
    """
    if cursor is not None:
        if before_seq is not None:
            raise Invalid(
                "Give before_seq or cursor, not both", details={"cursor": ["Give before_seq or cursor, not both."]}
            )
        (before_seq,) = decode_cursor("history", cursor, 1)
    messages, has_more = messages_before(conversation, before_seq, limit)
    events = [message_event(m) for m in messages]
    kept = fitting(events, from_end=True)
    has_more = has_more or kept < len(events)
    events = events[len(events) - kept :]
    return {
        "conversation_id": conversation.pk,
        "messages": events,
        "has_more": has_more,
        "next_cursor": encode_cursor("history", events[0]["seq"]) if has_more and events else None,
    }
