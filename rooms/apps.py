from django.apps import AppConfig


class RoomsConfig(AppConfig):
    """Generic rooms, server-side publishing and the HTTP publish API."""

    name = "rooms"

    def ready(self):
        from . import handlers  # noqa: F401  register the room.* frame handlers
