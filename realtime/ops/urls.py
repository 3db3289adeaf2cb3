"""Operations URLs of the real-time core."""

from django.urls import path

from . import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("api/websocket/stats", views.WebSocketStatsView.as_view(), name="websocket-stats"),
    path("metrics", views.prometheus_metrics, name="metrics"),
]
