"""
Seed 002's support-chat protocol (PHP Workerman) at ``/compat/002/ws``, translated onto chat's
native frames (docs/migration.md, "Seed 002").

Frames are flat JSON objects ``{"type", ...fields}`` (no ``data`` envelope). A "session" is a
conversation (the seed's support sessions: the user's support conversation, which any staff member
may join). Client frames map onto the native ones:

- ``auth {token, user_id?}`` -> ``auth`` (the consumer's): answered ``auth_success``; a ``user_id``
  that is not the token's user is refused (``check_auth``). ``auth {user_id?}`` without a token ->
  ``compat.002.auth``: confirms a connection the session cookie (or ``?token=``) authenticated; a
  bare ``user_id`` authenticates nobody.
- ``join_session {session_id}`` -> ``chat.join``; without ``session_id``, ``chat.support`` (the
  caller's own support conversation); answered ``joined_session``.
- ``leave_session {session_id}`` -> ``compat.002.leave``; answered ``left_session``.
- ``send_message {session_id, content, client_msg_id?}`` -> ``chat.send`` (chat.services stores it
  first); every connection in the session, the sender's included, gets ``new_message``.
- ``ping`` -> ``pong``.

Errors: ``{"type": "error", "code", "message", "details"?, "ref"?}``, the native codes, field
names as this protocol spells them.
"""

from typing import Any

from rest_framework import serializers

from realtime.codec import AdapterCodec
from realtime.conf import realtime_settings
from realtime.context import HandlerContext
from realtime.envelope import Frame, encode, is_ref, load_object
from realtime.errors import BadFrame, Forbidden, UnknownType
from realtime.registry import handler
from realtime.validation import IdField, validate

from ..events import conversation_group, viewers_group
from ..models import Conversation
from ..selectors import membership_of

__all__ = ["SEED002", "Seed002Codec"]

# Native field name -> this protocol's, in error details.
_FIELD_NAMES = {"conversation_id": "session_id"}
# Client frame fields passed on to chat.send (anything else is ignored, as the seed did).
_SEND_FIELDS = {"session_id": "conversation_id", "content": "content", "client_msg_id": "client_msg_id"}


def _ref(obj: dict):
    """The frame's optional ``ref`` (an extension: echoed in replies), checked as the native envelope's."""
    ref = obj.get("ref")
    if ref is None:
        return None
    if not is_ref(ref):
        raise BadFrame(f"'ref' must be a string or an integer of at most {realtime_settings.MAX_REF_CHARS} characters")
    return ref


def _with_ref(frame: dict, ref) -> str:
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)


class Seed002Codec(AdapterCodec):
    """Seed 002's frames <-> native frames."""

    name = "seed002"

    def decode(self, text: str) -> Frame:
        obj = load_object(text)
        ref = _ref(obj)
        frame_type = obj.get("type")
        if not isinstance(frame_type, str) or not frame_type:
            raise BadFrame("Frame needs a non-empty string 'type'", ref=ref)
        if frame_type == "ping":
            return Frame("ping", ref, {})
        if frame_type == "auth":
            data = {key: obj[key] for key in ("user_id",) if key in obj}
            if "token" in obj:
                return Frame("auth", ref, {**data, "token": obj["token"]})
            return Frame("compat.002.auth", ref, data)
        if frame_type == "join_session":
            if obj.get("session_id") is None:
                return Frame("chat.support", ref, {})
            return Frame("chat.join", ref, {"conversation_id": obj["session_id"]})
        if frame_type == "leave_session":
            return Frame("compat.002.leave", ref, {key: obj[key] for key in ("session_id",) if key in obj})
        if frame_type == "send_message":
            return Frame("chat.send", ref, {native: obj[key] for key, native in _SEND_FIELDS.items() if key in obj})
        error = UnknownType(frame_type)
        error.ref = ref  # the gate echoes it (realtime.consumer.gate)
        raise error

    def check_auth(self, frame: Frame, user) -> None:
        _check_user_id(frame.data, user)

    def opened(self) -> str | None:
        return encode({"type": "connected"})

    def pong(self, frame: Frame) -> str | None:
        return _with_ref({"type": "pong"}, frame.ref)

    def ack(self, frame: Frame, data: Any) -> str | None:
        if frame.type in ("chat.join", "chat.support"):
            return _with_ref({"type": "joined_session", "session_id": data["conversation"]["id"]}, frame.ref)
        if frame.type == "compat.002.leave":
            return _with_ref({"type": "left_session", "session_id": data["conversation_id"]}, frame.ref)
        if frame.type == "compat.002.auth":
            return _with_ref({"type": "auth_success", **data}, frame.ref)
        if frame.type == "chat.send" and data.get("duplicate"):
            # A resent client_msg_id: nothing is published again, so the sender hears of its stored message here.
            return _with_ref(_new_message(data["message"]), frame.ref)
        return None  # a sent message reaches the sender as new_message, with everyone in the session

    def error(self, code: str, message: str, details: Any, ref: Any) -> str:
        error = {"type": "error", "code": code, "message": message}
        if details is not None:
            error["details"] = (
                {_FIELD_NAMES.get(key, key): value for key, value in details.items()}
                if isinstance(details, dict)
                else details
            )
        return _with_ref(error, ref)

    def event(self, event_type: str, data: Any) -> str | None:
        if event_type == "chat.message":
            return encode(_new_message(data))
        if event_type == "welcome":
            return encode({"type": "auth_success", "user_id": data["user"]["id"], "username": data["user"]["username"]})
        if event_type == "support.closed":
            return encode({"type": "session_closed", "session_id": data["conversation_id"]})
        return None  # presence, typing, read receipts, the support desk: the seed had none


def _new_message(message: dict) -> dict:
    return {"type": "new_message", "session_id": message["conversation_id"], "message": message}


SEED002 = Seed002Codec()


class UserIdIn(serializers.Serializer):
    user_id = IdField(required=False)


class SessionIdIn(serializers.Serializer):
    session_id = IdField()


def _check_user_id(data: dict, user) -> None:
    """Refuse a ``user_id`` that is not ``user``'s: the seed's bare ``user_id`` never names who the connection is."""
    args = validate(UserIdIn, {key: data[key] for key in ("user_id",) if key in data})
    if "user_id" in args and args["user_id"] != user.pk:
        raise Forbidden("user_id is not the authenticated user's", details={"user_id": ["Not the token's user."]})


@handler("compat.002.auth")
def confirm_auth(ctx: HandlerContext, data: dict) -> dict:
    """Seed 002's ``auth`` on a connection already authenticated (cookie or ``?token=``): who it is."""
    _check_user_id(data, ctx.user)
    return {"user_id": ctx.user.pk, "username": ctx.user.get_username()}


@handler("compat.002.leave")
def leave_session(ctx: HandlerContext, data: dict) -> dict:
    """
    Seed 002's ``leave_session``: stop viewing; a staff member who joined a support conversation
    without being a member also stops receiving its messages (as the seed's session map did).
    """
    session_id = validate(SessionIdIn, data)["session_id"]
    ctx.unsubscribe(viewers_group(session_id))
    conversation = Conversation.objects.filter(pk=session_id).only("pk").first()
    if conversation is None or membership_of(ctx.user, conversation) is None:
        ctx.unsubscribe(conversation_group(session_id))
    return {"conversation_id": session_id}
