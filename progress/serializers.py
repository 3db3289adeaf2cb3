"""Batch-task input shapes, shared by the WebSocket handlers and REST."""

from django.conf import settings
from rest_framework import serializers

from realtime.validation import IdField, StrictCharField, StrictChoiceField, StrictIntegerField

from .generation import DATA_EXTENSIONS, TEMPLATE_EXTENSIONS, BatchInputError, check_upload


class TaskIdsIn(serializers.Serializer):
    """``task.subscribe`` / ``task.unsubscribe`` data: 1 to 100 task ids."""

    task_ids = serializers.ListField(child=IdField(), min_length=1, max_length=100)


class TaskIdIn(serializers.Serializer):
    """``task.pause`` / ``task.resume`` / ``task.cancel`` data."""

    task_id = IdField()


class CreateTaskIn(serializers.Serializer):
    """``POST /api/tasks/`` (multipart): a name, a data file (CSV, XLSX) and a template (DOCX, HTML, text)."""

    name = StrictCharField(max_length=200)
    data_file = serializers.FileField()
    template = serializers.FileField()

    def _checked(self, upload, extensions: tuple[str, ...]):
        if upload.size > settings.TASK_MAX_UPLOAD_BYTES:
            raise serializers.ValidationError(f"Files are limited to {settings.TASK_MAX_UPLOAD_BYTES} bytes.")
        if not upload.name.lower().endswith(extensions):
            raise serializers.ValidationError(f"Expected one of: {', '.join(extensions)}.")
        return upload

    def validate_data_file(self, upload):
        return self._checked(upload, DATA_EXTENSIONS)

    def validate_template(self, upload):
        return self._checked(upload, TEMPLATE_EXTENSIONS)

    def validate(self, attrs):
        """Refuse a batch whose every document would fail (generation.check_upload), on its file's field."""
        data, template = attrs["data_file"], attrs["template"]
        try:
            check_upload(data.read(), data.name, template.read(), template.name)
        except BatchInputError as exc:
            raise serializers.ValidationError({exc.field: [f"{exc}."]}) from None
        finally:
            data.seek(0)
            template.seek(0)
        return attrs


class ProgressIn(serializers.Serializer):
    """``POST /api/tasks/{id}/progress`` (external producers): progress figures and optionally a status."""

    current = StrictIntegerField(min_value=0, max_value=2**31 - 1)
    total = StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False)
    succeeded = StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False)
    failed = StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False)
    stage = StrictCharField(max_length=100, required=False, allow_blank=True)
    message = StrictCharField(max_length=500, required=False, allow_blank=True)
    status = StrictChoiceField(choices=["running", "completed", "failed", "cancelled"], required=False)
    error = StrictCharField(max_length=2000, required=False, allow_blank=True)


class TaskOut(serializers.Serializer):
    """The task shape (docs/protocol.md, "Batch tasks"), for the OpenAPI schema."""

    task_id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    current = serializers.IntegerField()
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    stage = serializers.CharField()
    eta_ms = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()
    error = serializers.CharField()
    version = serializers.IntegerField()
