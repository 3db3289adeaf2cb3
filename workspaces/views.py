"""
Workspace REST API (DRF): the same services and validation as the socket handlers, so a REST
change is broadcast exactly like a socket change. Errors use the envelope's codes
(realtime/rest.py): 400 invalid, 404 not_found, 403 forbidden, 409 conflict with the current
workspace in ``error.details.workspace``.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.paging import PageIn, page_schema
from realtime.rest import body_with
from realtime.validation import validate

from . import selectors, services
from .events import workspace_data
from .serializers import (
    CreateIn,
    ReorderIn,
    ShareBodyIn,
    ShareIn,
    UnshareIn,
    UpdateBodyIn,
    UpdateIn,
    WorkspaceOut,
)


class WorkspaceListView(APIView):
    """
    ``/api/workspaces/``: a page of the caller's workspaces in their order (``?limit=&cursor=``,
    as ``workspace.list``); create one.
    """

    @extend_schema(
        operation_id="workspaces_list",
        parameters=[PageIn],
        responses=page_schema("WorkspacePage", "workspaces", WorkspaceOut(many=True)),
    )
    def get(self, request):
        args = validate(PageIn, request.query_params.dict(), text_input=True)
        page = selectors.workspace_page(request.user, limit=args["limit"], cursor=args.get("cursor"))
        return Response(page.reply("workspaces"))

    @extend_schema(request=CreateIn, responses={201: WorkspaceOut})
    def post(self, request):
        args = validate(CreateIn, request.data)
        workspace = services.create_workspace(owner=request.user, **args)
        return Response(workspace_data(workspace), status=status.HTTP_201_CREATED)


class WorkspaceDetailView(APIView):
    """``/api/workspaces/{id}/``: read (members), update with a version (owner, editor), delete (owner)."""

    @extend_schema(responses=WorkspaceOut)
    def get(self, request, pk: int):
        workspace, _ = selectors.access_workspace(request.user, pk)
        return Response(workspace_data(workspace))

    @extend_schema(request=UpdateBodyIn, responses={200: WorkspaceOut, 409: None})
    def patch(self, request, pk: int):
        args = validate(UpdateIn, body_with(request, id=pk))
        workspace = services.update_workspace(
            actor=request.user, workspace_id=pk, version=args["version"], changes=args["changes"]
        )
        return Response(workspace_data(workspace))

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.delete_workspace(actor=request.user, workspace_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceOrderView(APIView):
    """``/api/workspaces/order/``: set the caller's own order (exactly their ids, each once)."""

    @extend_schema(request=ReorderIn, responses=ReorderIn)
    def put(self, request):
        args = validate(ReorderIn, request.data)
        return Response({"ids": services.reorder_workspaces(user=request.user, ids=args["ids"])})


class WorkspaceMembersView(APIView):
    """``/api/workspaces/{id}/members/``: share with a user as editor or viewer (owner only)."""

    @extend_schema(request=ShareBodyIn, responses=WorkspaceOut)
    def post(self, request, pk: int):
        args = validate(ShareIn, body_with(request, id=pk))
        workspace = services.share_workspace(
            actor=request.user, workspace_id=pk, user_id=args["user_id"], role=args["role"]
        )
        return Response(workspace_data(workspace))


class WorkspaceMemberView(APIView):
    """``/api/workspaces/{id}/members/{user_id}/``: unshare (owner), or leave (the member themselves)."""

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int, user_id: int):
        args = validate(UnshareIn, {"id": pk, "user_id": user_id})
        services.unshare_workspace(actor=request.user, workspace_id=args["id"], user_id=args["user_id"])
        return Response(status=status.HTTP_204_NO_CONTENT)
