from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self):
        from . import handlers  # noqa: F401  registers the chat.* frame handlers
