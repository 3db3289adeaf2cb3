"""The API keys of back-end services that publish over HTTP (``POST /api/rooms/publish/``)."""

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class ServiceKey(AbstractAPIKey):
    """
    One back-end service's API key (djangorestframework-api-key's model): its ``name``, the
    ``prefix`` that identifies it in logs and the admin, and ``hashed_key``, a SHA-512 of the
    whole high-entropy key; the key itself is shown once, when the admin creates it, and stored
    nowhere. ``revoked`` cannot be undone; ``expiry_date`` is optional; ``last_used`` is kept to
    the minute (``services.note_key_used``).
    """

    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "service key"
        verbose_name_plural = "service keys"
