"""API-wide pieces: JSON errors with a clear message."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error is JSON: {"error": {"code", "message", "fields"?}} with the right 4xx status."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        first = next(iter(fields.items()), ("", ["Invalid input."]))
        detail = first[1][0] if isinstance(first[1], list) and first[1] else first[1]
        message = f"{first[0]}: {detail}" if first[0] not in ("", "non_field_errors") else str(detail)
        response.data = {"error": {"code": "invalid", "message": message, "fields": fields}}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        message = data.get("detail", str(exc)) if isinstance(data, dict) else str(data)
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else code
        response.data = {"error": {"code": codes if isinstance(codes, str) else code, "message": str(message)}}
    return response
