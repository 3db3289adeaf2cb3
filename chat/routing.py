"""
Chat's WebSocket routes beside the native ``/ws/`` (config/asgi.py mounts them inside the same
Origin check and auth middleware): the seed servers' chat protocols (docs/migration.md).
"""

from django.urls import path

from realtime.consumer import RealtimeConsumer

from .compat.seed002 import SEED002
from .compat.seed004 import Seed004Consumer

websocket_urlpatterns = [
    path("compat/002/ws", RealtimeConsumer.as_asgi(codec=SEED002)),
    path("ws", Seed004Consumer.as_asgi()),
]
