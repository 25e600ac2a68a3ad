"""API permissions. Inside a studio only: members (session) or the studio's own API keys."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenants.access import membership_for
from tenants.models import MANAGING_ROLES, ApiKey


def _is_studio_key(request: Request) -> bool:
    key = request.auth
    studio = getattr(request, "studio", None)
    return isinstance(key, ApiKey) and studio is not None and key.studio_id == studio.pk


class IsStudioMember(BasePermission):
    """A member of the request's studio (any role), or an API key of that studio."""

    message = "Sign in as a member of this studio, or use one of its API keys."

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(request, "studio", None) is None:
            return False
        return _is_studio_key(request) or membership_for(request._request) is not None


class IsStudioManager(BasePermission):
    """An owner or manager of the request's studio (session only: API keys cannot manage people or keys)."""

    message = "Only the studio's owners and managers can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = membership_for(request._request)
        return membership is not None and membership.role in MANAGING_ROLES
