"""
REST rendering of the protocol's errors, so a REST client and a socket client see the same codes.

``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` points here. A ``ProtocolError`` raised by a service
becomes ``{"error": {"code", "message", "details"?}}`` with the HTTP status below; anything
else is DRF's own handling.
"""

from django.db import InterfaceError, OperationalError
from django.http import QueryDict
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ErrorCode, Invalid, ProtocolError, Unavailable

__all__ = ["HTTP_STATUS", "body_with", "exception_handler"]

HTTP_STATUS = {
    ErrorCode.BAD_JSON: 400,
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.INVALID: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.MESSAGE_TOO_BIG: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.LIMIT_EXCEEDED: 429,
    ErrorCode.GOING_AWAY: 503,
    ErrorCode.SESSION_REPLACED: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.SERVER_ERROR: 500,
}


def exception_handler(exc, context):
    """
    DRF exception handler: ``ProtocolError`` -> its status and envelope error; a database that
    is unreachable or locked -> 503 ``unavailable`` (retryable); others -> DRF's.
    """
    if isinstance(exc, (OperationalError, InterfaceError)):
        exc = Unavailable()
    if isinstance(exc, ProtocolError):
        return Response({"error": exc.as_dict()}, status=HTTP_STATUS[exc.code])
    return drf_exception_handler(exc, context)


def body_with(request, **path_args) -> dict | QueryDict:
    """
    The request body as one object, with ``path_args`` (ids from the URL) over it: what a view
    hands to ``realtime.validation.validate``. A form body stays a ``QueryDict`` (its values are
    text, parsed as such by ``validate``); a JSON body that is not an object (an array, a number)
    is ``Invalid``, never a server error.
    """
    data = request.data
    if isinstance(data, QueryDict):
        merged = data.copy()
        for key, value in path_args.items():
            merged[key] = str(value)
        return merged
    if not isinstance(data, dict):
        raise Invalid("The request body must be a JSON object", details={"non_field_errors": ["Expected an object."]})
    return {**data, **path_args}
