"""
Seed 004's chat protocol (Go, gorilla/websocket) at ``/ws`` (no trailing slash; the native
endpoint is ``/ws/``), translated onto chat's services (docs/migration.md, "Seed 004").

The JWT comes at the handshake: the ``websocket`` request header or ``?token=``
(realtime.consumer.auth). Every client frame is one message, a flat object
``{conversationId, recvId, sendId, chatType (1 group, 2 private), content, contentType (1 text,
2 image)}``, run as ``compat.004.send``: the sender is always the token's user (a ``sendId`` must
match it); a private message goes to ``recvId``'s direct conversation, created when absent
(chat.services); a group message to ``conversationId`` (a conversation the sender is a member
of, support conversations included). Every member's connections, the sender's included, get the
stored message pushed in the same flat shape plus ``id``, ``seq``, ``sendTime`` (epoch ms) and
``attachment``. ``{"type": "ping"}`` is answered ``{"type": "pong"}``; errors are
``{"type": "error", "code", "message", "details"?}``.

A push names ``chatType`` and, for a private message, ``recvId``, which the native
``chat.message`` does not carry: this endpoint's connections keep the kind and the pair of each
conversation they follow in a process-wide table (``ConversationFacts``), read from the database
when they start following it (session start, a new membership), before its messages reach them.
"""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from realtime.codec import AdapterCodec
from realtime.consumer import RealtimeConsumer, SingleSession
from realtime.context import HandlerContext
from realtime.db import database_call
from realtime.envelope import Frame, encode, load_object
from realtime.errors import Forbidden
from realtime.registry import handler
from realtime.validation import IdField, StrictChoiceField, TextField, validate

from .. import services
from ..events import message_event
from ..models import Conversation, Message
from ..serializers import SendMessageIn

__all__ = ["SEED004", "Seed004Codec", "Seed004Consumer"]

GROUP, PRIVATE = 1, 2
TEXT, IMAGE = 1, 2
_CONTENT_TYPES = {TEXT: Message.ContentType.TEXT, IMAGE: Message.ContentType.IMAGE}
_SEED_CONTENT_TYPES = {native: seed for seed, native in _CONTENT_TYPES.items()}
# Native field name -> this protocol's, in error details.
_FIELD_NAMES = {
    "conversation_id": "conversationId",
    "recipient_id": "recvId",
    "content_type": "contentType",
    "attachment_id": "attachmentId",
}


class ConversationFacts:
    """
    ``conversation id -> (chatType, member ids of a private conversation or None)`` for the
    conversations this process's seed-004 connections follow. Kinds and pairs never change, so an
    entry never goes stale. The table is cleared when it grows past ``limit`` and refilled as
    connections start following conversations; until then a connection that already followed a
    cleared private conversation gets its pushes with ``chatType`` 1 and ``recvId`` null.
    """

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self.known: dict[int, tuple[int, tuple[int, ...] | None]] = {}

    def missing(self, conversation_ids) -> list[int]:
        return [cid for cid in conversation_ids if cid not in self.known]

    def load(self, conversation_ids: list[int]) -> None:
        """Read the facts of ``conversation_ids`` (in the database thread: realtime.db.database_call)."""
        if len(self.known) + len(conversation_ids) > self.limit:
            self.known.clear()
        rows = Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "kind", "direct_key")
        for pk, kind, direct_key in rows:
            if kind == Conversation.Kind.DIRECT and direct_key:
                self.known[pk] = (PRIVATE, tuple(int(uid) for uid in direct_key.split(":")))
            else:
                self.known[pk] = (GROUP, None)

    def of(self, conversation_id: int) -> tuple[int, tuple[int, ...] | None]:
        return self.known.get(conversation_id, (GROUP, None))


FACTS = ConversationFacts()
_GROUP_PREFIX = "chat.conversation."  # chat.events.conversation_group


class Seed004Codec(AdapterCodec):
    """Seed 004's flat frames <-> native frames."""

    name = "seed004"
    # The token comes with the handshake (``websocket`` header or ``?token=``), as the seed had it.
    auth_frame = False

    def decode(self, text: str) -> Frame:
        obj = load_object(text)
        if obj.get("type") == "ping":
            return Frame("ping", None, {})
        return Frame("compat.004.send", None, obj)

    def pong(self, frame: Frame) -> str | None:
        return encode({"type": "pong"})

    def ack(self, frame: Frame, data: Any) -> str | None:
        return None  # the sender's connections get the stored message pushed, as every member's do

    def error(self, code: str, message: str, details: Any, ref: Any) -> str:
        error = {"type": "error", "code": code, "message": message}
        if details is not None:
            error["details"] = (
                {_FIELD_NAMES.get(key, key): value for key, value in details.items()}
                if isinstance(details, dict)
                else details
            )
        return encode(error)

    def event(self, event_type: str, data: Any) -> str | None:
        if event_type != "chat.message":
            return None  # welcome, presence, read receipts, typing: the seed had none
        chat_type, pair = FACTS.of(data["conversation_id"])
        recv_id = None
        if pair is not None:
            recv_id = next((uid for uid in pair if uid != data["sender_id"]), None)
        return encode(
            {
                "conversationId": data["conversation_id"],
                "recvId": recv_id,
                "sendId": data["sender_id"],
                "chatType": chat_type,
                "content": data["content"],
                "contentType": _SEED_CONTENT_TYPES.get(data["content_type"], TEXT),
                "id": data["id"],
                "seq": data["seq"],
                "sendTime": data["created_at"],
                "attachment": data["attachment"],
            }
        )


SEED004 = Seed004Codec()


class Seed004Consumer(RealtimeConsumer):
    """
    The consumer with seed 004's codec, which reads the facts (``ConversationFacts``) of each
    conversation before the connection follows it, so its pushes name ``chatType`` and ``recvId``;
    and with the seed's single sign-on (``single_session``).
    """

    codec = SEED004

    def single_session(self) -> SingleSession:
        """
        ``settings.CHAT_SEED004_SINGLE_SESSION``: the seed closed a user's old connection when a
        new one opened. ``endpoint`` (default, the seed's own: it had this one endpoint) closes the
        user's other seed-004 connections, ``user`` every connection of the user on any endpoint,
        ``off`` none (close 4409 with error ``session_replaced``, on every server process).
        """
        return SingleSession(settings.CHAT_SEED004_SINGLE_SESSION)

    async def follow(self, *groups: str) -> None:
        ids = [int(g[len(_GROUP_PREFIX) :]) for g in groups if g.startswith(_GROUP_PREFIX)]
        if missing := FACTS.missing(ids):
            await database_call(FACTS.load, missing)
        await super().follow(*groups)


class SendIn(serializers.Serializer):
    """A seed-004 frame: ``chatType`` and ``content`` always; ``recvId`` (private) or ``conversationId`` (group)."""

    conversationId = IdField(required=False, allow_null=True)  # noqa: N815 (the seed's names)
    recvId = IdField(required=False, allow_null=True)  # noqa: N815
    sendId = IdField(required=False, allow_null=True)  # noqa: N815
    chatType = StrictChoiceField(choices=[GROUP, PRIVATE])  # noqa: N815
    content = TextField(trim_whitespace=False, allow_blank=True, default="")
    contentType = StrictChoiceField(choices=[TEXT, IMAGE], default=TEXT)  # noqa: N815
    attachmentId = IdField(required=False)  # noqa: N815  an image uploaded first (POST /api/chat/attachments/)

    def validate(self, attrs):
        needed = "recvId" if attrs["chatType"] == PRIVATE else "conversationId"
        if attrs.get(needed) is None:
            kind = "private" if attrs["chatType"] == PRIVATE else "group"
            raise serializers.ValidationError({needed: [f"Required for a {kind} message."]})
        return attrs


@handler("compat.004.send")
def send(ctx: HandlerContext, data: dict) -> dict:
    """
    One seed-004 message through chat.services (the one write path): to ``recvId``'s direct
    conversation (created when absent) or to the group ``conversationId``; sender: the token's user.
    """
    args = validate(SendIn, data)
    if args.get("sendId") is not None and args["sendId"] != ctx.user.pk:
        raise Forbidden("sendId is not the authenticated user's", details={"sendId": ["Not the token's user."]})
    target = (
        {"recipient_id": args["recvId"]} if args["chatType"] == PRIVATE else {"conversation_id": args["conversationId"]}
    )
    fields = {"content": args["content"], "content_type": _CONTENT_TYPES[args["contentType"]]}
    if "attachmentId" in args:
        fields["attachment_id"] = args["attachmentId"]
    native = validate(SendMessageIn, {**target, **fields})  # the native rules (content, attachment)
    message, created = services.send_as(ctx.user, **native)
    return {"message": message_event(message), "duplicate": not created}
