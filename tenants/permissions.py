"""API permissions. Inside a studio only: members (session) or the studio's own API keys.

What each caller gets, so that nothing about another studio leaks:
- anonymous (no session, no key): False, and DRF answers 401 (ApiKeyAuthentication names the scheme);
- a signed-in user who is not a member of the request's studio: 404, the same as for a studio that does not
  exist (never a 403 that would confirm it does);
- a member or key refused an action: 404 when the URL names an object the studio does not have (another
  studio's id included), else 403 with a message. The object check goes first, so a 403 is only ever given
  about the studio's own objects.

API keys authenticate as the key (request.user is anonymous, request.auth the ApiKey): they may do what any
member may, never what needs an owner or manager (people, invitations, API keys, studio settings).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenants.access import membership_for
from tenants.models import MANAGING_ROLES, ApiKey

MANAGERS_ONLY_MESSAGE = _("Only the studio's owners and managers can do this.")
NO_KEYS_MESSAGE = _("API keys cannot do this: sign in as one of the studio's owners or managers.")


def request_api_key(request: Request) -> ApiKey | None:
    """The API key the request authenticated with, when it is one of the request's studio's keys."""
    key = request.auth
    studio = getattr(request, "studio", None)
    if isinstance(key, ApiKey) and studio is not None and key.studio_id == studio.pk:
        return key
    return None


def _names_missing_object(view: Any) -> bool:
    """True when the URL names an object (the view's lookup kwarg) that the studio's queryset lacks."""
    kwargs = getattr(view, "kwargs", None) or {}
    url_kwarg = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
    if not url_kwarg or url_kwarg not in kwargs or not hasattr(view, "get_queryset"):
        return False
    field = getattr(view, "lookup_field", None) or "pk"
    try:
        return not view.get_queryset().filter(**{field: kwargs[url_kwarg]}).exists()
    except (ValueError, TypeError, DjangoValidationError):
        return True


def refuse(view: Any, message: str) -> None:
    """Raise 404 if the URL names an object the studio does not have, else 403 with `message`."""
    if _names_missing_object(view):
        raise NotFound()
    raise PermissionDenied(message)


class IsStudioMember(BasePermission):
    """A member of the request's studio (any role), or an API key of that studio."""

    message = _("Sign in as a member of this studio, or use one of its API keys.")

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(request, "studio", None) is None:
            raise NotFound()
        if request_api_key(request) is not None:
            return True
        if not request.user.is_authenticated:
            return False  # 401
        if membership_for(request._request) is None:
            raise NotFound()  # signed in, but not a member: this studio's API does not exist for them
        return True


class IsStudioManager(BasePermission):
    """An owner or manager of the request's studio, signed in (API keys cannot manage people or keys)."""

    message = MANAGERS_ONLY_MESSAGE

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        if request.auth is not None:
            refuse(view, NO_KEYS_MESSAGE)
        membership = membership_for(request._request)
        if membership is None or membership.role not in MANAGING_ROLES:
            refuse(view, MANAGERS_ONLY_MESSAGE)
        return True


class IsStudioManagerOrReadOnly(BasePermission):
    """Any member or key may read; only owners and managers (signed in) may write."""

    message = MANAGERS_ONLY_MESSAGE

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return IsStudioMember().has_permission(request, view)
        return IsStudioManager().has_permission(request, view)


# A rule: (member roles allowed, whether the studio's API keys are, the message for others).
Rule = tuple[frozenset[str], bool, str]


class RulePermission(BasePermission):
    """Member or key first (401 / 404), then the URL's parent objects (`view.load_parents()`, 404), then the
    action's rule (`view.rule_for(request)`: None lets any member or key through; else 404 for a missing object,
    403 with the rule's message for a role or key it doesn't allow). Subclasses set `message`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not IsStudioMember().has_permission(request, view):
            return False
        if hasattr(view, "load_parents"):
            view.load_parents()
        rule = view.rule_for(request)
        if rule is None:
            return True
        roles, keys_allowed, message = rule
        if request_api_key(request) is not None:
            if keys_allowed:
                return True
            refuse(view, NO_KEYS_MESSAGE)
        membership = membership_for(request._request)
        if membership is None or membership.role not in roles:
            refuse(view, message)
        return True
