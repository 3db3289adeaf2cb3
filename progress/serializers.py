"""Batch-task input shapes, shared by the WebSocket handlers and REST."""

from rest_framework import serializers

from realtime.validation import IdField


class TaskIdsIn(serializers.Serializer):
    """``task.subscribe`` / ``task.unsubscribe`` data: 1 to 100 task ids."""

    task_ids = serializers.ListField(child=IdField(), min_length=1, max_length=100)
