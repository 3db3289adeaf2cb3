"""Workspace group names and event payloads: the only place that builds them."""

from .models import Workspace, WorkspaceMember


def workspace_group(workspace_id: int) -> str:
    """Every open connection of every member of the workspace: ``workspaces.workspace.<id>``."""
    return f"workspaces.workspace.{workspace_id}"


def epoch_ms(value) -> int:
    return int(value.timestamp() * 1000)


def _members_by_workspace(workspace_ids: list[int]) -> dict[int, list[dict]]:
    members: dict[int, list[dict]] = {workspace_id: [] for workspace_id in workspace_ids}
    rows = WorkspaceMember.objects.filter(workspace_id__in=workspace_ids).order_by("user_id")
    for workspace_id, user_id, username, role in rows.values_list("workspace_id", "user_id", "user__username", "role"):
        members[workspace_id].append({"user_id": user_id, "username": username, "role": role})
    return members


def workspaces_data(workspaces: list[Workspace]) -> list[dict]:
    """
    Workspaces as every member sees them (acks, events, REST), in the given order: timestamps in
    epoch ms, members by user id (each client finds its own role there). One query for all members.
    """
    members = _members_by_workspace([w.pk for w in workspaces])
    return [
        {
            "id": workspace.pk,
            "name": workspace.name,
            "description": workspace.description,
            "settings": workspace.settings,
            "owner_id": workspace.owner_id,
            "version": workspace.version,
            "created_at": epoch_ms(workspace.created_at),
            "updated_at": epoch_ms(workspace.updated_at),
            "members": members[workspace.pk],
        }
        for workspace in workspaces
    ]


def workspace_data(workspace: Workspace) -> dict:
    """One workspace's ``workspaces_data``."""
    return workspaces_data([workspace])[0]
