"""
Batch tasks in the admin: filter by status, see documents, pause/resume/cancel. The actions go
through ``services.request``, so subscribers see them live exactly as a socket command.
"""

from django.contrib import admin, messages

from realtime.errors import Conflict

from . import services
from .models import BatchTask, TaskDocument

Status = BatchTask.Status


class TaskDocumentInline(admin.TabularInline):
    model = TaskDocument
    fields = ("index", "status", "output_name", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


def _request_action(status: str, description: str):
    def action(modeladmin, request, queryset):
        done, refused = 0, []
        for task in queryset:
            try:
                services.request(task.pk, status)
                done += 1
            except Conflict as exc:
                refused.append(f"{task.name}: {exc.message}")
        modeladmin.message_user(request, f"{description}: {done} task(s).", messages.SUCCESS)
        if refused:
            modeladmin.message_user(request, "; ".join(refused), messages.WARNING)

    action.__name__ = f"request_{status}"
    return admin.action(description=f"{description} the selected tasks")(action)


@admin.register(BatchTask)
class BatchTaskAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "status", "progress", "current", "total", "failed", "updated_at")
    list_filter = ("status",)
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = (
        "status",
        "total",
        "current",
        "succeeded",
        "failed",
        "stage",
        "message",
        "error",
        "eta_ms",
        "version",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "result",
    )
    fields = ("name", "owner", "template", "data_file", *readonly_fields)
    inlines = [TaskDocumentInline]
    actions = [
        _request_action(Status.PAUSED, "Pause"),
        _request_action(Status.RUNNING, "Resume"),
        _request_action(Status.CANCELLED, "Cancel"),
    ]

    def has_add_permission(self, request):
        # Tasks are created with their uploads through POST /api/tasks/ (or the tasks page).
        return False
