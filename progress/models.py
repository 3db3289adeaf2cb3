"""Batch tasks (seed 001): a job of ``total`` documents whose progress is pushed to subscribers."""

from django.conf import settings
from django.db import models


class BatchTask(models.Model):
    """
    One batch job. ``version`` grows by one on every saved change, so a client keeps the newest
    snapshot it has seen of a task whatever order its events arrive in.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batch_tasks")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    current = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=100, blank=True)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    eta_ms = models.PositiveBigIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="batch_task_owner_recent")]

    def __str__(self):
        return f"{self.name} ({self.status})"

    @property
    def progress(self) -> float:
        """Percent done, 0-100, one decimal (0 while ``total`` is unknown)."""
        return round(100 * self.current / self.total, 1) if self.total else 0.0
