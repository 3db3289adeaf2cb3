"""Workspace group names and event payloads: the only place that builds them."""

from realtime.users import member_entry, user_fields

from .models import Workspace, WorkspaceMember


def workspace_group(workspace_id: int) -> str:
    """Every open connection of every member of the workspace: ``workspaces.workspace.<id>``."""
    return f"workspaces.workspace.{workspace_id}"


def epoch_ms(value) -> int:
    return int(value.timestamp() * 1000)


def _members_by_workspace(workspace_ids: list[int]) -> dict[int, list[dict]]:
    # The one place workspaces build member lists: realtime.users.member_entry, the shape of every domain.
    members: dict[int, list[dict]] = {workspace_id: [] for workspace_id in workspace_ids}
    rows = (
        WorkspaceMember.objects.filter(workspace_id__in=workspace_ids)
        .select_related("user")
        .only("workspace_id", "role", "user_id", *user_fields("user__"))
        .order_by("user_id")
    )
    for membership in rows:
        members[membership.workspace_id].append(member_entry(membership.user, membership.role))
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
