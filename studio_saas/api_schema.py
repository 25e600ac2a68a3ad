"""The studio API's OpenAPI schema tells the truth: every answer an operation can give is in it.

`StudioAutoSchema` (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]) is drf-spectacular's AutoSchema with two additions,
made once here rather than by hand on every operation:

- **Error answers.** Every error has the one body of studio_saas/api.py, documented as the `Error` component.
  Each operation gets the errors it can give: 401 (no or an invalid credential), 403 (a role or an API key that
  may not do this), 404 (an unknown studio, a signed-in non-member, an object the studio doesn't have), 400 where
  input is read or an action can be refused (a request body, query parameters, any write), 415 where a body is
  read, 429 where the view is throttled; errors a view declares itself (409, 502, 503, ...) get the same body.
- **Nullable and blank fields.** drf-spectacular reads `allow_null`/`allow_blank`; this also marks as nullable a
  read-only field whose default is None (`EmailField(source="created_by.email", default=None)`: null when nobody
  is recorded) and a method field whose method may return None (its return type hint says so, even when
  `@extend_schema_field` gives the type), and lets a read-only string read from a `blank=True` model field with a
  format (an order's email before Stripe reports it) be empty.

tests/test_api_schema.py holds the API to it: schemathesis over every operation, failing on any undocumented
status code, content type or body.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR_DESCRIPTIONS: dict[str, str] = {
    "400": "Invalid input: `error.code` is `invalid` (or the refusing rule's code), `error.message` names the first "
    "problem and its field, `error.fields` lists every problem by field.",
    "401": "Not authenticated: no credential, or an API key that is malformed, unknown, revoked or another studio's.",
    "403": "Not allowed: the member's role or the API key may not do this (API keys never manage people, "
    "invitations, API keys or studio settings).",
    "404": "Not found: no such studio, not a member of it, or no such object in this studio (another studio's ids "
    "included).",
    "409": "Conflict: the object's state doesn't allow this now (`error.message` says why).",
    "415": "Unsupported media type: send the body as one of the content types documented for the request.",
    "429": "Too many requests: wait, then try again.",
    "502": "The payment provider refused or failed: nothing was changed.",
    "503": "Not available: the service this needs is not configured or not reachable.",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="A stable machine-readable code, e.g. `invalid`, `not_authenticated`, `permission_denied`, "
        "`not_found`, or the code of the business rule that refused the action."
    )
    message = serializers.CharField(help_text="What went wrong, in words to show a person.")
    fields = serializers.DictField(
        required=False,
        help_text="Invalid input only: the problems per field (a list of messages, or nested for nested input).",
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer of the API."""

    error = ErrorDetailSerializer()


def _may_return_none(method: Any) -> bool:
    try:
        hint = typing.get_type_hints(method).get("return")
    except Exception:  # noqa: BLE001 - an unresolvable hint says nothing either way
        return False
    if hint is None or hint is type(None):
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return type(None) in typing.get_args(hint)
    return False


def _is_nullable(field: serializers.Field) -> bool:
    if field.read_only and field.default is None:
        return True  # a dotted source through a null relation answers the default
    if isinstance(field, serializers.SerializerMethodField) and field.parent is not None:
        return _may_return_none(getattr(field.parent, field.method_name, None))
    return False


def _may_be_blank(field: serializers.Field) -> bool:
    """A read-only string field read straight from a model field with blank=True (ModelSerializer drops
    allow_blank from read-only fields)."""
    if not (isinstance(field, serializers.CharField) and field.read_only) or field.allow_blank:
        return False
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return bool(model._meta.get_field(field.source).blank)
    except FieldDoesNotExist:
        return False


class StudioAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error answers and the nullable and blank fields (module docstring)."""

    def _get_serializer_field_meta(self, field: Any, direction: str) -> dict[str, Any]:
        meta = super()._get_serializer_field_meta(field, direction)
        if isinstance(field, serializers.Field) and not meta.get("nullable") and _is_nullable(field):
            meta["nullable"] = True
        return meta

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(schema, dict) and schema.get("type") == "string" and "format" in schema and _may_be_blank(field):
            outer_keys = {"readOnly", "writeOnly", "nullable", "deprecated", "description", "title"}
            inner = {key: schema.pop(key) for key in list(schema) if key not in outer_keys}
            schema["oneOf"] = [inner, {"type": "string", "maxLength": 0}]
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses: dict[str, Any] = operation.setdefault("responses", {})
        for code in self._error_codes(operation):
            responses.setdefault(code, {})
        error_ref = self.resolve_serializer(ErrorSerializer, "response").ref
        for code, response in responses.items():
            if not (code.isdigit() and int(code) >= 400) or response.get("content"):
                continue
            description = response.get("description", "")
            if not description or description.startswith('{"error"'):  # the body shape, now the component
                description = ERROR_DESCRIPTIONS.get(code, "An error.")
            response.update(description=description, content={"application/json": {"schema": error_ref}})
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        """The error statuses every operation of this kind can give (see the module docstring)."""
        codes = ["404"]
        if not any(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes += ["401", "403"]
        reads_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
        if reads_query or "requestBody" in operation or self.method in ("POST", "PUT", "PATCH"):
            codes.append("400")  # invalid input, or a business rule's refusal (ActionRefused's default status)
        if "requestBody" in operation:
            codes.append("415")
        if self.view.get_throttles():
            codes.append("429")
        return codes
