"""The HTTP publish API and the admin's announcement page (included before ``admin/`` in config/urls.py)."""

from django.contrib import admin
from django.urls import path

from .views import PublishView, announcement_view

urlpatterns = [
    path("api/rooms/publish/", PublishView.as_view(), name="rooms-publish"),
    path("admin/announce/", admin.site.admin_view(announcement_view), name="rooms-announce"),
]
