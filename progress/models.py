"""Batch tasks (seed 001): a data file x a template -> one document per row, progress pushed live."""

import secrets

from django.conf import settings
from django.db import models


def _new_progress_token() -> str:
    return secrets.token_urlsafe(32)


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
    # Inputs and output, stored through Django's storage API (MEDIA_ROOT by default).
    template = models.FileField(upload_to="tasks/templates/", blank=True)
    data_file = models.FileField(upload_to="tasks/data/", blank=True)
    result = models.FileField(upload_to="tasks/results/", blank=True)
    # Producers outside Django authenticate POST /api/tasks/{id}/progress with this (owner-visible).
    progress_token = models.CharField(max_length=64, default=_new_progress_token, editable=False)
    # The worker's lease: refreshed between documents; a running task whose lease ran out has lost
    # its worker (progress.lifecycle.fail_abandoned_tasks).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
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


class TaskDocument(models.Model):
    """One generated (or failed) document of a task: row ``index`` (0-based) of the data file."""

    class Status(models.TextChoices):
        GENERATED = "generated"
        FAILED = "failed"

    task = models.ForeignKey(BatchTask, on_delete=models.CASCADE, related_name="documents")
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    output_name = models.CharField(max_length=255, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "index"]
        constraints = [models.UniqueConstraint(fields=["task", "index"], name="task_document_unique_index")]

    def __str__(self):
        return f"{self.task_id}#{self.index} {self.status}"
