"""API key authentication: `Authorization: Api-Key sk_<prefix>_<secret>` (also `Bearer sk_...`).

A request made with a key authenticates *as the key*: `request.auth` is the ApiKey and `request.user` is an
AnonymousUser, not the key's creator. So a key never inherits a person's role (a manager's key cannot manage
people or keys), and a key keeps working, with the same rights, after its creator leaves the studio.
tenants/permissions.py lets a key of the request's studio in wherever any member may go.

A malformed, unknown or revoked key, or a key of another studio than the one the request is for, is refused
with 401 and a JSON message. The lookup runs in the request's tenant context (set by the tenant middleware),
so another studio's key is simply not found.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from tenants.api_keys import KEY_SCHEME, authenticate_key, mark_used, parse_key
from tenants.models import ApiKey

INVALID_KEY_MESSAGE = "Invalid API key: it is unknown, revoked, or not a key of this studio."


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        scheme = header[0].decode("latin-1").lower()
        value = header[1].decode("latin-1") if len(header) > 1 else ""
        if scheme == "bearer" and not value.startswith(f"{KEY_SCHEME}_"):
            return None  # another kind of bearer token: not ours
        if scheme not in ("api-key", "bearer"):
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use `Authorization: Api-Key <key>`.")
        if getattr(request, "studio", None) is None:
            raise exceptions.AuthenticationFailed("API keys are valid only inside their studio's API.")
        if parse_key(value) is None:
            raise exceptions.AuthenticationFailed(
                f"Malformed API key: keys look like {KEY_SCHEME}_<prefix>_<secret>, as shown when created."
            )
        api_key = authenticate_key(raw_key=value)
        if api_key is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY_MESSAGE)
        mark_used(api_key=api_key)
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 to unauthenticated requests.
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the scheme in the OpenAPI schema (drf-spectacular picks extensions up on import)."""

    target_class = "tenants.api_auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key sk_<prefix>_<secret>`: a key created by a studio owner or manager.",
        }
