"""
Workspace write paths: every write, whether from a socket, REST or the admin, goes through here,
checks the actor's role inside its transaction, and publishes after commit.

Events (docs/protocol.md, "Workspaces"): ``workspace.created | updated | deleted | shared |
unshared`` go to every open connection of every member; ``workspace.reordered`` only to the
user whose list it is.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max

from realtime.errors import Conflict, Invalid, NotFound
from realtime.groups import user_group
from realtime.publish import publish_on_commit, subscribe_user_on_commit, unsubscribe_user_on_commit

from .events import workspace_data, workspace_group
from .models import Workspace, WorkspaceMember
from .selectors import CAN_EDIT, OWNER_ONLY, Role, access_workspace

EDITABLE_FIELDS = ("name", "description", "settings")


def _authorize(actor, workspace_id: int, roles: frozenset, staff_override: bool) -> tuple[Workspace, str]:
    """Lock the workspace and return it with the actor's role; staff acting from the admin count as owner."""
    if staff_override and actor.is_staff:
        workspace = Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        if workspace is None:
            raise NotFound("Workspace not found")
        return workspace, Role.OWNER
    return access_workspace(actor, workspace_id, roles=roles, lock=True)


def _next_position(user) -> int:
    last = WorkspaceMember.objects.filter(user=user).aggregate(last=Max("position"))["last"]
    return 0 if last is None else last + 1


def _add_member(workspace: Workspace, user, role: str) -> WorkspaceMember:
    """
    Add ``user`` at the end of their list; their open connections subscribe after commit and get
    ``workspace.shared``/``created``.
    """
    return WorkspaceMember.objects.create(workspace=workspace, user=user, role=role, position=_next_position(user))


def create_workspace(*, owner, name: str, description: str = "", settings: dict | None = None) -> Workspace:
    """
    Create a workspace owned by ``owner``, last in the owner's list. Every open connection of the
    owner subscribes to it and receives ``workspace.created`` after commit.
    """
    with transaction.atomic():
        workspace = Workspace.objects.create(owner=owner, name=name, description=description, settings=settings or {})
        _add_member(workspace, owner, Role.OWNER)
        subscribe_user_on_commit(
            user_group(owner.pk), workspace_group(workspace.pk), event=("workspace.created", workspace_data(workspace))
        )
    return workspace


def update_workspace(
    *, actor, workspace_id: int, version: int, changes: dict, staff_override: bool = False
) -> Workspace:
    """
    Apply ``changes`` (a subset of name, description, settings) if ``version`` is current.

    Raise ``NotFound`` (absent or not a member), ``Forbidden`` (viewer), ``Conflict`` with the
    current workspace in ``details["workspace"]`` when ``version`` is stale: nothing is written.
    Two racing updates on the same version end with exactly one winner (row lock on PostgreSQL,
    IMMEDIATE transactions on SQLite).
    """
    with transaction.atomic():
        workspace, _ = _authorize(actor, workspace_id, CAN_EDIT, staff_override)
        if workspace.version != version:
            raise Conflict(
                f"Workspace changed since version {version}; it is now version {workspace.version}",
                details={"workspace": workspace_data(workspace)},
            )
        for field in EDITABLE_FIELDS:
            if field in changes:
                setattr(workspace, field, changes[field])
        workspace.version += 1
        workspace.save()
        publish_on_commit(workspace_group(workspace.pk), "workspace.updated", workspace_data(workspace))
    return workspace


def delete_workspace(*, actor, workspace_id: int, staff_override: bool = False) -> int:
    """
    Delete the workspace (owner only; ``Forbidden`` otherwise) and return its id. Members get
    ``workspace.deleted {id}``, then their connections leave its group.
    """
    with transaction.atomic():
        workspace, _ = _authorize(actor, workspace_id, OWNER_ONLY, staff_override)
        member_ids = list(workspace.members.values_list("user_id", flat=True))
        group = workspace_group(workspace.pk)
        workspace.delete()
        publish_on_commit(group, "workspace.deleted", {"id": workspace_id})
        for user_id in member_ids:
            unsubscribe_user_on_commit(user_group(user_id), group)
    return workspace_id


def reorder_workspaces(*, user, ids: list[int]) -> list[int]:
    """
    Set ``user``'s own order to ``ids``, which must hold each of their workspace ids exactly once.

    Raise ``Invalid`` (details on ``ids``) for missing, extra, foreign or repeated ids; nothing
    changes then. Only ``user``'s connections get ``workspace.reordered {ids}``.
    """
    with transaction.atomic():
        memberships = {m.workspace_id: m for m in WorkspaceMember.objects.select_for_update().filter(user=user)}
        problems = []
        if len(set(ids)) != len(ids):
            problems.append("Each workspace id must appear once.")
        if unknown := sorted(set(ids) - memberships.keys()):
            problems.append(f"Not your workspaces: {unknown}.")
        if missing := sorted(memberships.keys() - set(ids)):
            problems.append(f"Missing workspaces: {missing}.")
        if problems:
            raise Invalid("ids must be exactly your workspace ids, each once", details={"ids": problems})
        for position, workspace_id in enumerate(ids):
            memberships[workspace_id].position = position
        WorkspaceMember.objects.bulk_update(memberships.values(), ["position"])
        publish_on_commit(user_group(user.pk), "workspace.reordered", {"ids": list(ids)})
    return list(ids)


def share_workspace(*, actor, workspace_id: int, user_id: int, role: str, staff_override: bool = False) -> Workspace:
    """
    Give ``user_id`` the ``role`` (editor or viewer) in the workspace (owner only).

    A new member's connections subscribe and receive ``workspace.shared`` once; the existing
    members get the same event. Raise ``NotFound`` for an unknown or inactive user, ``Invalid``
    for the owner themselves or a role other than editor/viewer.
    """
    if role not in (Role.EDITOR, Role.VIEWER):
        raise Invalid("role must be editor or viewer", details={"role": [f'"{role}" is not a valid choice.']})
    with transaction.atomic():
        workspace, _ = _authorize(actor, workspace_id, OWNER_ONLY, staff_override)
        target = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if target is None:
            raise NotFound("User not found")
        if target.pk == workspace.owner_id:
            raise Invalid("The owner's role cannot change", details={"user_id": ["Is the owner."]})
        membership = WorkspaceMember.objects.filter(workspace=workspace, user=target).first()
        if membership is None:
            _add_member(workspace, target, role)
        else:
            membership.role = role
            membership.save(update_fields=["role"])
        event = {"workspace": workspace_data(workspace), "user_id": target.pk, "role": role}
        group = workspace_group(workspace.pk)
        # Existing members first (the newcomer is not subscribed yet), then the newcomer's own copy.
        publish_on_commit(group, "workspace.shared", event)
        if membership is None:
            subscribe_user_on_commit(user_group(target.pk), group, event=("workspace.shared", event))
    return workspace


def unshare_workspace(*, actor, workspace_id: int, user_id: int, staff_override: bool = False) -> Workspace:
    """
    Remove ``user_id`` from the workspace: the owner removes anyone but themselves; any other
    member may remove themselves (leave). Every member, the removed one included, gets
    ``workspace.unshared {id, user_id}``; then the removed user's connections leave its group.
    """
    with transaction.atomic():
        leaving = user_id == actor.pk
        workspace, _ = _authorize(actor, workspace_id, None if leaving else OWNER_ONLY, staff_override)
        if user_id == workspace.owner_id:
            raise Invalid("The owner cannot be removed", details={"user_id": ["Is the owner."]})
        deleted, _ = WorkspaceMember.objects.filter(workspace=workspace, user_id=user_id).delete()
        if not deleted:
            raise NotFound("Not a member of this workspace")
        group = workspace_group(workspace.pk)
        publish_on_commit(group, "workspace.unshared", {"id": workspace.pk, "user_id": user_id})
        unsubscribe_user_on_commit(user_group(user_id), group)
    return workspace
