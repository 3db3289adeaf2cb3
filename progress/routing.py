"""Progress WebSocket routes, mounted by config/asgi.py beside ``/ws/``: seed 001's compatibility endpoint."""

from django.urls import path

from realtime.consumer import RealtimeConsumer

from .compat import Seed001Codec

websocket_urlpatterns = [path("compat/001/ws", RealtimeConsumer.as_asgi(codec=Seed001Codec()))]
