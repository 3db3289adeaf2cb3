from django.apps import AppConfig


class RoomsConfig(AppConfig):
    """Generic rooms, server-side publishing and the HTTP publish API."""

    name = "rooms"

    def ready(self):
        from . import checks, handlers  # noqa: F401  register the system check and the room.* frame handlers
