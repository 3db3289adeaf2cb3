"""Chat WebSocket handlers: parse, authorise, call a service or selector, return the ack data."""

from realtime.context import HandlerContext
from realtime.errors import ProtocolError
from realtime.paging import CursorIn, PageIn
from realtime.publish import publish
from realtime.registry import batch_handler, handler, session_groups
from realtime.users import display_name
from realtime.validation import validate, validate_each

from . import selectors, services
from .events import conversation_group, conversation_summary, message_event, support_desk_group, viewers_group
from .serializers import (
    ChangeRoleIn,
    ConversationIdIn,
    CreateGroupIn,
    HistoryIn,
    JoinIn,
    MemberIn,
    ReadIn,
    RemoveMemberIn,
    SendMessageIn,
)


@session_groups
def member_conversation_groups(user) -> list[str]:
    """
    Every connection of a member receives its conversations' messages, joined or not; staff
    connections also follow the support desk (``support.updated``, ``support.closed``).
    """
    groups = [conversation_group(cid) for cid in selectors.conversation_ids_for(user)]
    if user.is_staff:
        groups.append(support_desk_group())
    return groups


@batch_handler("chat.join")
def join(calls: list[tuple[HandlerContext, dict]]) -> list[dict | Exception]:
    """
    View the conversation: its summary and every member's read position; with ``after_seq``, the
    messages after it (docs/protocol.md, "chat.join", "Resume"). Each call is answered on its own
    (``invalid``, ``not_found``, or its ack data) and subscribes its own connection.

    A batch handler (realtime.delivery.group_commit): the joins of the connections whose frames
    arrived together are read together, in a few queries for all (selectors.join_replies). A
    reconnect storm sends one per conversation of each returning client (``make bench-storm``).
    """
    outcomes: list[dict | Exception | None] = [None] * len(calls)
    requests: list[tuple[int, selectors.JoinRequest]] = []
    for i, ((ctx, _), args) in enumerate(zip(calls, validate_each(JoinIn, [data for _, data in calls]), strict=True)):
        if isinstance(args, ProtocolError):
            outcomes[i] = args
        else:
            requests.append(
                (i, selectors.JoinRequest(ctx.user, args["conversation_id"], args.get("after_seq"), args["limit"]))
            )
    for (i, request), reply in zip(requests, selectors.join_replies([r for _, r in requests]), strict=True):
        if not isinstance(reply, Exception):
            ctx = calls[i][0]
            ctx.subscribe(conversation_group(request.conversation_id))
            ctx.subscribe(viewers_group(request.conversation_id))
        outcomes[i] = reply
    return outcomes


@handler("chat.leave")
def leave(ctx: HandlerContext, data: dict) -> dict:
    args = validate(ConversationIdIn, data)
    ctx.unsubscribe(viewers_group(args["conversation_id"]))
    return {"conversation_id": args["conversation_id"]}


@batch_handler("chat.send")
def send(calls: list[tuple[HandlerContext, dict]]) -> list[dict | Exception]:
    """
    ``chat.send`` from the connections whose frames arrived together: each validated on its own
    (one serializer for the batch, realtime.validation.validate_each),
    all stored in one transaction (services.send_many); each acked with its message.
    """
    outcomes: list[dict | Exception | None] = [None] * len(calls)
    requests: list[tuple[int, services.SendRequest]] = []
    for i, ((ctx, _), args) in enumerate(
        zip(calls, validate_each(SendMessageIn, [data for _, data in calls]), strict=True)
    ):
        if isinstance(args, ProtocolError):
            outcomes[i] = args
        else:
            requests.append((i, services.SendRequest(sender=ctx.user, **args)))
    for (i, _), sent in zip(requests, services.send_many([request for _, request in requests]), strict=True):
        outcomes[i] = (
            sent if isinstance(sent, Exception) else {"message": message_event(sent[0]), "duplicate": not sent[1]}
        )
    return outcomes


@handler("chat.history")
def history(ctx: HandlerContext, data: dict) -> dict:
    """A page of the conversation's messages before ``before_seq`` or ``cursor`` (newest page without either)."""
    args = validate(HistoryIn, data)
    cursor = validate(CursorIn, data).get("cursor")
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    return selectors.history_page(conversation, limit=args["limit"], before_seq=args.get("before_seq"), cursor=cursor)


@handler("chat.typing")
def typing(ctx: HandlerContext, data: dict) -> dict:
    """
    Tell the others viewing the conversation that this user is typing. Ephemeral: never stored;
    frequent frames are refused by the ``chat.typing`` rate limit (settings REALTIME).
    """
    args = validate(ConversationIdIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    publish(
        viewers_group(conversation.pk),
        "chat.typing",
        {"conversation_id": conversation.pk, "user_id": ctx.user.pk, "name": display_name(ctx.user)},
        exclude_connection=ctx.connection_id,
    )
    return {"conversation_id": conversation.pk}


@handler("chat.conversations")
def conversations(ctx: HandlerContext, data: dict) -> dict:
    """A page of the user's conversations with their last message and unread count, most recent first."""
    args = validate(PageIn, data)
    return selectors.conversation_page(ctx.user, limit=args["limit"], cursor=args.get("cursor")).reply("conversations")


@handler("chat.read")
def read(ctx: HandlerContext, data: dict) -> dict:
    """Mark the conversation read up to ``seq``; the members are told with ``chat.read``."""
    args = validate(ReadIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    read_seq, unread = services.mark_read(user=ctx.user, conversation=conversation, seq=args["seq"])
    return {"conversation_id": conversation.pk, "last_read_seq": read_seq, "unread": unread}


@handler("chat.create_group")
def create_group(ctx: HandlerContext, data: dict) -> dict:
    """Create a group owned by the caller; every member gets ``chat.member_added``."""
    args = validate(CreateGroupIn, data)
    conversation = services.create_group(owner=ctx.user, title=args["title"], member_ids=args["member_ids"])
    return {"conversation": conversation_summary(conversation)}


@handler("chat.add_member")
def add_member(ctx: HandlerContext, data: dict) -> dict:
    """Add a member (owner/admins; only the owner names admins)."""
    args = validate(MemberIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    user = selectors.access_user(args["user_id"])
    services.add_member(actor=ctx.user, conversation=conversation, user=user, role=args["role"])
    return {"conversation": conversation_summary(conversation)}


@handler("chat.change_role")
def change_role(ctx: HandlerContext, data: dict) -> dict:
    """
    Make a group member an admin or a plain member (the owner only: services.change_role); the
    members get ``chat.member_role_changed``. Ack ``{conversation_id, user_id, role}``.
    """
    args = validate(ChangeRoleIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    membership = services.change_role(
        actor=ctx.user, conversation=conversation, user_id=args["user_id"], role=args["role"]
    )
    return {"conversation_id": conversation.pk, "user_id": membership.user_id, "role": membership.role}


@handler("chat.remove_member")
def remove_member(ctx: HandlerContext, data: dict) -> dict:
    """Remove a member (owner/admins), or leave (``user_id`` = oneself)."""
    args = validate(RemoveMemberIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    services.remove_member(actor=ctx.user, conversation=conversation, user_id=args["user_id"])
    return {"conversation_id": conversation.pk, "user_id": args["user_id"]}


@handler("chat.support")
def support(ctx: HandlerContext, data: dict) -> dict:
    """Open (or return) the caller's support conversation; the reply carries its summary."""
    conversation, _ = services.open_support(user=ctx.user)
    # Subscribed before the ack (the after-commit subscription of a new one may come later).
    ctx.subscribe(conversation_group(conversation.pk))
    return {"conversation": conversation_summary(conversation)}
