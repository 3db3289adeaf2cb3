from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    """Live workspace sync (seed 000)."""

    name = "workspaces"

    def ready(self):
        from . import handlers  # noqa: F401  registers the workspace.* frame handlers
