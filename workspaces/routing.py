"""Workspace WebSocket routes, mounted by config/asgi.py beside ``/ws/``: seed 000's compatibility endpoint."""

from django.urls import path

from realtime.consumer import RealtimeConsumer

from .compat import Seed000Codec

websocket_urlpatterns = [path("compat/000/ws", RealtimeConsumer.as_asgi(codec=Seed000Codec()))]
