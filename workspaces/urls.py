"""Workspace REST API and page."""

from django.urls import path

from . import pages, views

urlpatterns = [
    path("workspaces/", pages.workspaces_page, name="workspaces"),
    path("api/workspaces/", views.WorkspaceListView.as_view(), name="workspace-list"),
    path("api/workspaces/order/", views.WorkspaceOrderView.as_view(), name="workspace-order"),
    path("api/workspaces/<int:pk>/", views.WorkspaceDetailView.as_view(), name="workspace-detail"),
    path("api/workspaces/<int:pk>/members/", views.WorkspaceMembersView.as_view(), name="workspace-members"),
    path(
        "api/workspaces/<int:pk>/members/<int:user_id>/", views.WorkspaceMemberView.as_view(), name="workspace-member"
    ),
]
