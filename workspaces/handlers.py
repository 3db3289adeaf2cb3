"""Workspace WebSocket handlers: parse, call a service or selector, return the ack data."""

from realtime.context import HandlerContext
from realtime.paging import PageIn
from realtime.registry import handler, session_groups
from realtime.validation import validate

from . import selectors, services
from .events import workspace_data, workspace_group
from .serializers import CreateIn, ReorderIn, ShareIn, UnshareIn, UpdateIn, WorkspaceIdIn


@session_groups
def member_workspace_groups(user) -> list[str]:
    """Every connection of a member receives its workspaces' events."""
    return [workspace_group(workspace_id) for workspace_id in selectors.workspace_ids_for(user)]


@handler("workspace.list")
def list_workspaces(ctx: HandlerContext, data: dict) -> dict:
    """A page of the user's workspaces in their order (``limit``, ``cursor``: realtime/paging.py)."""
    args = validate(PageIn, data)
    return selectors.workspace_page(ctx.user, limit=args["limit"], cursor=args.get("cursor")).reply("workspaces")


@handler("workspace.create")
def create(ctx: HandlerContext, data: dict) -> dict:
    args = validate(CreateIn, data)
    return {"workspace": workspace_data(services.create_workspace(owner=ctx.user, **args))}


@handler("workspace.update")
def update(ctx: HandlerContext, data: dict) -> dict:
    args = validate(UpdateIn, data)
    workspace = services.update_workspace(
        actor=ctx.user, workspace_id=args["id"], version=args["version"], changes=args["changes"]
    )
    return {"workspace": workspace_data(workspace)}


@handler("workspace.delete")
def delete(ctx: HandlerContext, data: dict) -> dict:
    args = validate(WorkspaceIdIn, data)
    return {"id": services.delete_workspace(actor=ctx.user, workspace_id=args["id"])}


@handler("workspace.reorder")
def reorder(ctx: HandlerContext, data: dict) -> dict:
    args = validate(ReorderIn, data)
    return {"ids": services.reorder_workspaces(user=ctx.user, ids=args["ids"])}


@handler("workspace.share")
def share(ctx: HandlerContext, data: dict) -> dict:
    args = validate(ShareIn, data)
    workspace = services.share_workspace(
        actor=ctx.user, workspace_id=args["id"], user_id=args["user_id"], role=args["role"]
    )
    return {"workspace": workspace_data(workspace), "user_id": args["user_id"], "role": args["role"]}


@handler("workspace.unshare")
def unshare(ctx: HandlerContext, data: dict) -> dict:
    args = validate(UnshareIn, data)
    workspace = services.unshare_workspace(actor=ctx.user, workspace_id=args["id"], user_id=args["user_id"])
    return {"id": workspace.pk, "user_id": args["user_id"]}
