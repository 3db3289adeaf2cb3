"""Workspace group names and event payloads: the only place that builds them."""

from .models import Workspace


def workspace_group(workspace_id: int) -> str:
    """Every open connection of every member of the workspace: ``workspaces.workspace.<id>``."""
    return f"workspaces.workspace.{workspace_id}"


def epoch_ms(value) -> int:
    return int(value.timestamp() * 1000)


def workspace_data(workspace: Workspace) -> dict:
    """
    A workspace as every member sees it (acks, events, REST): timestamps in epoch ms, members by
    user id (each client finds its own role there).
    """
    return {
        "id": workspace.pk,
        "name": workspace.name,
        "description": workspace.description,
        "settings": workspace.settings,
        "owner_id": workspace.owner_id,
        "version": workspace.version,
        "created_at": epoch_ms(workspace.created_at),
        "updated_at": epoch_ms(workspace.updated_at),
        "members": [
            {"user_id": user_id, "username": username, "role": role}
            for user_id, username, role in workspace.members.order_by("user_id").values_list(
                "user_id", "user__username", "role"
            )
        ],
    }
