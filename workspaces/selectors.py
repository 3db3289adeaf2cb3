"""Workspace read paths and access checks."""

from django.db.models import Q

from realtime.errors import Forbidden, NotFound
from realtime.paging import Page, decode_cursor, paged

from .events import workspaces_data
from .models import Workspace, WorkspaceMember

Role = WorkspaceMember.Role
CAN_EDIT = frozenset({Role.OWNER, Role.EDITOR})
OWNER_ONLY = frozenset({Role.OWNER})


def access_workspace(
    user, workspace_id: int, *, roles: frozenset | None = None, lock: bool = False
) -> tuple[Workspace, str]:
    """
    Return the workspace and ``user``'s role in it.

    Raise ``NotFound`` when it does not exist or ``user`` is not a member (the two look alike, so
    ids reveal nothing), ``Forbidden`` when the role is not in ``roles``. ``lock`` takes the row
    lock (PostgreSQL; SQLite's IMMEDIATE transaction already serialises writers) and must be used
    inside a transaction.
    """
    queryset = Workspace.objects.select_for_update() if lock else Workspace.objects
    workspace = queryset.filter(pk=workspace_id).first()
    membership = workspace and WorkspaceMember.objects.filter(workspace=workspace, user=user).first()
    if not membership:
        raise NotFound("Workspace not found")
    if roles is not None and membership.role not in roles:
        raise Forbidden(f"A {membership.role} cannot do this")
    return workspace, membership.role


def workspaces_for(user) -> list[Workspace]:
    """``user``'s workspaces in their own order."""
    return [
        m.workspace
        for m in WorkspaceMember.objects.filter(user=user).select_related("workspace").order_by("position", "id")
    ]


def workspace_page(user, *, limit: int, cursor: str | None) -> Page:
    """
    A page of ``user``'s workspaces as ``workspaces_data``, in their order (``position``, then
    workspace id), after ``cursor`` (realtime/paging.py; ``Invalid`` when malformed). Two queries.
    """
    after = decode_cursor("workspaces", cursor, 2)
    memberships = WorkspaceMember.objects.filter(user=user)
    if after is not None:
        position, workspace_id = after
        memberships = memberships.filter(Q(position__gt=position) | Q(position=position, workspace_id__gt=workspace_id))
    rows = list(memberships.select_related("workspace").order_by("position", "workspace_id")[: limit + 1])
    return paged(
        "workspaces",
        rows,
        limit,
        key=lambda m: (m.position, m.workspace_id),
        render=lambda page: workspaces_data([m.workspace for m in page]),
    )


def workspace_ids_for(user) -> list[int]:
    """Ids of every workspace ``user`` is a member of."""
    return list(WorkspaceMember.objects.filter(user=user).values_list("workspace_id", flat=True))
