"""The test app's frame handlers, session groups and presence receiver (registered by apps.py)."""

from rest_framework import serializers

from realtime.context import HandlerContext
from realtime.errors import NotFound, ProtocolError
from realtime.publish import publish, publish_to_groups
from realtime.registry import batch_handler, handler, session_groups
from realtime.users import display_name
from realtime.validation import IdField, TextField, validate, validate_each

from .models import RoomMember


def room_group(room_id: int) -> str:
    """Every open connection of every member (a session group): ``lobby.message`` and presence go here."""
    return f"testapp.room.{room_id}"


def viewers_group(room_id: int) -> str:
    """The connections that sent ``lobby.join``: ``lobby.typing`` goes here."""
    return f"testapp.viewers.{room_id}"


class RoomIn(serializers.Serializer):
    room_id = IdField()


class SendIn(RoomIn):
    text = TextField(max_length=1000)


def access_room(user, room_id: int) -> int:
    """``room_id`` if ``user`` is a member of it; raise ``NotFound`` otherwise (one query)."""
    if not RoomMember.objects.filter(room_id=room_id, user=user).exists():
        raise NotFound("No such room")
    return room_id


@session_groups
def member_room_groups(user) -> list[str]:
    """The groups of the user's rooms, in one query."""
    return [room_group(room_id) for room_id in RoomMember.objects.filter(user=user).values_list("room_id", flat=True)]


@handler("lobby.join")
def join(ctx: HandlerContext, data: dict) -> dict:
    room_id = access_room(ctx.user, validate(RoomIn, data)["room_id"])
    ctx.subscribe(room_group(room_id))
    ctx.subscribe(viewers_group(room_id))
    return {"room_id": room_id}


@handler("lobby.typing")
def typing(ctx: HandlerContext, data: dict) -> dict:
    room_id = access_room(ctx.user, validate(RoomIn, data)["room_id"])
    publish(
        viewers_group(room_id),
        "lobby.typing",
        {"room_id": room_id, "user_id": ctx.user.pk, "name": display_name(ctx.user)},
        exclude_connection=ctx.connection_id,
    )
    return {"room_id": room_id}


@batch_handler("lobby.send")
def send(calls: list[tuple[HandlerContext, dict]]) -> list[dict | Exception]:
    """Each call validated and authorised on its own; ``lobby.message`` to the room's members, stored nowhere."""
    outcomes: list[dict | Exception] = []
    for (ctx, _), args in zip(calls, validate_each(SendIn, [data for _, data in calls]), strict=True):
        try:
            if isinstance(args, ProtocolError):
                raise args
            room_id = access_room(ctx.user, args["room_id"])
        except ProtocolError as error:
            outcomes.append(error)
            continue
        publish(
            room_group(room_id), "lobby.message", {"room_id": room_id, "user_id": ctx.user.pk, "text": args["text"]}
        )
        outcomes.append({"room_id": room_id})
    return outcomes


def publish_presence(sender, *, user_id: int, online: bool, last_seen: int | None, **kwargs) -> None:
    """``presence_changed`` receiver: ``presence.changed`` to the user's rooms, in one query and one event."""
    room_ids = RoomMember.objects.filter(user_id=user_id).values_list("room_id", flat=True)
    publish_to_groups(
        [room_group(room_id) for room_id in room_ids],
        "presence.changed",
        {"user_id": user_id, "online": online, "last_seen": last_seen},
    )
