"""Workspaces (seed 000) and who may see or change them."""

from django.conf import settings
from django.db import models

# Module-level: inside Workspace, the ``settings`` field shadows django.conf.settings.
USER_MODEL = settings.AUTH_USER_MODEL


class Workspace(models.Model):
    """
    A shared workspace. ``version`` starts at 1 and grows by one on every change: an update names
    the version it was based on and is refused as a conflict when that is not the current one.
    """

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=2000)
    settings = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(USER_MODEL, on_delete=models.CASCADE, related_name="owned_workspaces")
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


class WorkspaceMember(models.Model):
    """A user's role in a workspace, and where it sits in that user's own list (``position``, 0 first)."""

    class Role(models.TextChoices):
        OWNER = "owner"
        EDITOR = "editor"
        VIEWER = "viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(USER_MODEL, on_delete=models.CASCADE, related_name="workspace_memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    position = models.PositiveIntegerField(default=0)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "position"]
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="workspace_member_unique")]
        indexes = [models.Index(fields=["user", "position"], name="workspace_member_order")]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.workspace}"
