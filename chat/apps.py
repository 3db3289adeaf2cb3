from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self):
        from realtime.signals import presence_changed

        from . import handlers  # noqa: F401  registers the chat.* frame handlers
        from .compat import seed002, seed004  # noqa: F401  registers the compat.* frame handlers
        from .presence import publish_presence

        presence_changed.connect(publish_presence, dispatch_uid="chat.presence")
