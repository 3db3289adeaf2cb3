"""Batch-task REST API and page, and seed 001's stats at their compatibility paths."""

from django.urls import path

from . import pages, views

urlpatterns = [
    path("tasks/", pages.tasks_page, name="tasks"),
    path("api/tasks/", views.TaskListView.as_view(), name="task-list"),
    path("api/tasks/<int:pk>/", views.TaskDetailView.as_view(), name="task-detail"),
    path("api/tasks/<int:pk>/pause", views.TaskCommandView.as_view(command="pause"), name="task-pause"),
    path("api/tasks/<int:pk>/resume", views.TaskCommandView.as_view(command="resume"), name="task-resume"),
    path("api/tasks/<int:pk>/cancel", views.TaskCommandView.as_view(command="cancel"), name="task-cancel"),
    path("api/tasks/<int:pk>/download", views.TaskDownloadView.as_view(), name="task-download"),
    path("api/tasks/<int:pk>/progress", views.TaskProgressView.as_view(), name="task-progress"),
    path("api/broadcaster/stats", views.BroadcasterStatsView.as_view(), name="broadcaster-stats"),
    # Seed 001's HTTP stats in its own field names (docs/migration.md, "Seed 001").
    path(
        "compat/001/api/broadcaster/stats",
        views.Seed001BroadcasterStatsView.as_view(),
        name="compat-001-broadcaster-stats",
    ),
    path(
        "compat/001/api/websocket/stats", views.Seed001WebSocketStatsView.as_view(), name="compat-001-websocket-stats"
    ),
]
