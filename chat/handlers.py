"""Chat WebSocket handlers: parse, authorise, call a service or selector, return the ack data."""

from realtime.context import HandlerContext
from realtime.publish import publish
from realtime.registry import handler, session_groups
from realtime.validation import validate

from . import selectors, services
from .events import conversation_group, conversation_summary, message_event, viewers_group
from .serializers import ConversationIdIn, HistoryIn, JoinIn, ReadIn, SendMessageIn


@session_groups
def member_conversation_groups(user) -> list[str]:
    """Every connection of a member receives its conversations' messages, joined or not."""
    return [conversation_group(cid) for cid in selectors.conversation_ids_for(user)]


@handler("chat.join")
def join(ctx: HandlerContext, data: dict) -> dict:
    args = validate(JoinIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    ctx.subscribe(conversation_group(conversation.pk))
    ctx.subscribe(viewers_group(conversation.pk))
    reply = {"conversation": conversation_summary(conversation)}
    if "after_seq" in args:
        messages, has_more = selectors.messages_after(conversation, args["after_seq"], args["limit"])
        reply.update(messages=[message_event(m) for m in messages], has_more=has_more)
    return reply


@handler("chat.leave")
def leave(ctx: HandlerContext, data: dict) -> dict:
    args = validate(ConversationIdIn, data)
    ctx.unsubscribe(viewers_group(args["conversation_id"]))
    return {"conversation_id": args["conversation_id"]}


@handler("chat.send")
def send(ctx: HandlerContext, data: dict) -> dict:
    args = validate(SendMessageIn, data)
    content = {k: args[k] for k in ("content", "content_type") if k in args}
    client_msg_id = args.get("client_msg_id")
    if "recipient_id" in args:
        recipient = selectors.access_recipient(ctx.user, args["recipient_id"])
        message, created = services.send_direct_message(
            sender=ctx.user, recipient=recipient, client_msg_id=client_msg_id, **content
        )
    else:
        conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
        message, created = services.send_message(
            sender=ctx.user, conversation=conversation, client_msg_id=client_msg_id, **content
        )
    return {"message": message_event(message), "duplicate": not created}


@handler("chat.history")
def history(ctx: HandlerContext, data: dict) -> dict:
    args = validate(HistoryIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    messages, has_more = selectors.messages_before(conversation, args.get("before_seq"), args["limit"])
    return {"conversation_id": conversation.pk, "messages": [message_event(m) for m in messages], "has_more": has_more}


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
        {"conversation_id": conversation.pk, "user_id": ctx.user.pk},
        exclude_connection=ctx.connection_id,
    )
    return {"conversation_id": conversation.pk}


@handler("chat.conversations")
def conversations(ctx: HandlerContext, data: dict) -> dict:
    """The user's conversations with their last message and unread count, most recent first."""
    return {"conversations": selectors.conversations_for(ctx.user)}


@handler("chat.read")
def read(ctx: HandlerContext, data: dict) -> dict:
    """Mark the conversation read up to ``seq``; the members are told with ``chat.read``."""
    args = validate(ReadIn, data)
    conversation = selectors.access_conversation(ctx.user, args["conversation_id"])
    read_seq, unread = services.mark_read(user=ctx.user, conversation=conversation, seq=args["seq"])
    return {"conversation_id": conversation.pk, "last_read_seq": read_seq, "unread": unread}
