from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    """Live workspace sync (seed 000); models and handlers arrive with issue 4."""

    name = "workspaces"
