"""API-wide pieces: JSON errors with a clear message.

Every API error has the same shape, whatever raised it (DRF, Django, a service refusing an action with a
tenants.refusals.Refused: its status and code):

    {"error": {"code": "not_found", "message": "Not found."}}
    {"error": {"code": "invalid", "message": "name: This field is required.", "fields": {...}}}
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from tenants.refusals import Refused


def _first_message(detail: Any, path: str = "") -> str:
    """The first error message in a (nested) DRF error structure, prefixed with its field path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = "" if key in ("non_field_errors", "__all__") else str(key)
            return _first_message(value, f"{path}.{sub}" if path and sub else (sub or path))
        return "Invalid input."
    if isinstance(detail, list | tuple):
        return _first_message(detail[0], path) if detail else "Invalid input."
    return f"{path}: {detail}" if path else str(detail)


def _too_much_message(exc: Exception) -> str:
    if isinstance(exc, TooManyFieldsSent):
        return f"Too many fields in the request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}."
    if isinstance(exc, TooManyFilesSent):
        return f"Too many files in one request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES}."
    return f"The request body is too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes besides files."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error is JSON: {"error": {"code", "message", "fields"?}} with the right 4xx status."""
    if isinstance(exc, Refused):  # every app's refusal, mapped once: its message, status and code
        if exc.fields:  # about the input: like a validation error, with the message of each field
            fields = exc.fields
            error = {"code": "invalid", "message": _first_message(fields), "fields": fields}
            return Response({"error": error}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent | RequestDataTooBig):
        exc = exceptions.ParseError(_too_much_message(exc))  # raised by Django's parsers while DRF reads the body
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        response.data = {"error": {"code": "invalid", "message": _first_message(fields), "fields": fields}}
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    message = data.get("detail", str(exc)) if isinstance(data, dict) else str(data)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = getattr(exc, "default_code", "error")
    response.data = {"error": {"code": code, "message": str(message)}}
    return response


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404 for URLconfs that serve the API: a JSON 404 under /api/, Django's page elsewhere.
    Use it as `handler404 = "studio_saas.api.json_not_found"` in studio_saas/urls_studio.py."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "message": "No such API endpoint."}}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())
