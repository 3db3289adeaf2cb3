"""
How a back-end service authenticates to the HTTP publish API and how fast it may publish:
``Authorization: Api-Key <key>`` checked against ``ServiceKey`` (djangorestframework-api-key's
key parser and hashing), a DRF throttle per key at ``settings.ROOMS_PUBLISH_RATE``.
"""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework_api_key.permissions import KeyParser

from . import services
from .models import ServiceKey


class ServiceKeyAuthentication(authentication.BaseAuthentication):
    """
    ``Authorization: Api-Key <key>``: ``request.auth`` is the ``ServiceKey``, ``request.user`` an
    anonymous user (a service is no user). No such header: not authenticated (401 by the
    permission); an unknown, revoked or expired key: 401.
    """

    keyword = "Api-Key"
    key_parser = KeyParser()

    def authenticate(self, request):
        key = self.key_parser.get(request)
        if not key:
            return None
        try:
            service_key = ServiceKey.objects.get_from_key(key)
        except ServiceKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.") from None
        if service_key.has_expired:
            raise exceptions.AuthenticationFailed("Expired API key.")
        services.note_key_used(service_key)
        return AnonymousUser(), service_key

    def authenticate_header(self, request):
        return self.keyword


class HasServiceKey(permissions.BasePermission):
    """Allow requests authenticated by a ``ServiceKey`` only."""

    def has_permission(self, request, view):
        return isinstance(request.auth, ServiceKey)


class ServiceKeyRateThrottle(throttling.SimpleRateThrottle):
    """
    Requests per ``ServiceKey``, at ``settings.ROOMS_PUBLISH_RATE`` (DRF's rate syntax,
    ``"600/min"``), counted in Django's default cache: per process unless ``CACHES`` is shared.
    """

    scope = "rooms_publish"

    def get_rate(self):
        return settings.ROOMS_PUBLISH_RATE

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ServiceKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class ServiceKeyScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ``ServiceKeyAuthentication`` (drf-spectacular)."""

    target_class = ServiceKeyAuthentication
    name = "ServiceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, a key created in the admin (Rooms > Service keys).",
        }
