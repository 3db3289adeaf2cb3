"""WebSocket URL routes: one multiplexed endpoint."""

from django.urls import path

from .consumer import RealtimeConsumer

websocket_urlpatterns = [path("ws/", RealtimeConsumer.as_asgi())]
