"""Generic-room WebSocket handlers (``room.join``, ``room.leave``, ``room.publish``): parse, authorise, reply."""

from realtime.context import HandlerContext
from realtime.errors import Invalid
from realtime.registry import handler
from realtime.validation import validate

from . import services
from .policy import ROOM_NAME, check_join, check_publish, room_group
from .serializers import RoomIn, RoomPublishIn


@handler("room.join")
def join(ctx: HandlerContext, data: dict) -> dict:
    """
    Follow ``room``'s messages on this connection (idempotent; counts against ``MAX_SUBSCRIPTIONS``);
    ack ``{room}``. ``not_found`` for a room no namespace matches, ``forbidden`` when its ``join``
    rule refuses the user, ``invalid`` for a bad name.
    """
    room = validate(RoomIn, data)["room"]
    check_join(ctx.user, room)
    ctx.subscribe(room_group(room))
    return {"room": room}


@handler("room.leave")
def leave(ctx: HandlerContext, data: dict) -> dict:
    """
    Stop following ``room`` on this connection; ack ``{room}``. Idempotent, and checks the name
    only: a room whose namespace was removed from the settings can still be left.
    """
    room = validate(RoomIn, data)["room"]
    if not ROOM_NAME.fullmatch(room):
        raise Invalid(details={"room": ["1-80 letters, digits, '_', '-' or ':'"]})
    ctx.unsubscribe(room_group(room))
    return {"room": room}


@handler("room.publish")
def publish(ctx: HandlerContext, data: dict) -> dict:
    """
    Publish ``room.message`` to ``room``'s connections, this one included unless ``except_self``;
    ack ``{room, event}``. Its ``publish`` rule decides (``members``: this connection joined it).
    """
    args = validate(RoomPublishIn, data)
    room = args["room"]
    check_publish(ctx.user, room, member=room_group(room) in ctx.subscriptions)
    services.publish_to_room(
        room=room,
        event=args["event"],
        data=args["data"],
        sender=ctx.user,
        connection_id=ctx.connection_id,
        except_self=args["except_self"],
    )
    return {"room": room, "event": args["event"]}
