"""Progress WebSocket routes, mounted by config/asgi.py beside ``/ws/``: seed 001's compatibility endpoint."""

from django.urls import path

from .compat import Seed001Consumer

websocket_urlpatterns = [path("compat/001/ws", Seed001Consumer.as_asgi())]
