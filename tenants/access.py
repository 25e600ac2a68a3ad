"""Who may do what in the current studio. Views and the API call these; nothing else decides."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from tenants.models import MANAGING_ROLES, Membership, Role, User

_UNSET = object()


def acting_user(who: Any) -> User | None:
    """The signed-in user a service records as the actor: `who` is a user or a request (page or API); None for
    an anonymous caller, an API key or nobody."""
    user = getattr(who, "user", who)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def membership_for(request: HttpRequest) -> Membership | None:
    """The signed-in user's membership in the request's studio (cached on the request), or None."""
    cached = getattr(request, "_membership_cache", _UNSET)
    if cached is not _UNSET:
        return cached
    membership = None
    user = getattr(request, "user", None)
    if getattr(request, "studio", None) is not None and user is not None and user.is_authenticated:
        membership = Membership.objects.select_related("user").filter(user_id=user.pk).first()
    request._membership_cache = membership
    return membership


def has_role(request: HttpRequest, roles: Iterable[str]) -> bool:
    membership = membership_for(request)
    return membership is not None and membership.role in set(roles)


def studio_member_required(
    view: Callable[..., HttpResponse] | None = None, *, roles: Iterable[str] | None = None
) -> Any:
    """Page decorator: anonymous users go to the studio's login page; a signed-in user who is not a member
    (or lacks the role) gets 404, never a 403 that would confirm what exists."""
    allowed = frozenset(roles) if roles is not None else frozenset(Role.values)

    def decorator(func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if getattr(request, "studio", None) is None:
                raise Http404("No studio")
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_for(request)
            if membership is None or membership.role not in allowed:
                raise Http404("Not found")
            return func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


manager_required = studio_member_required(roles=MANAGING_ROLES)


def require_http_methods_of(
    lookup: Callable[..., Any], methods: Iterable[str]
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Django's require_http_methods for a view of an object: a method the view doesn't accept is answered 405
    only once `lookup(**url_kwargs)` has found the URL's object in this studio (it raises Http404 otherwise), so
    another studio's id is a 404 whatever the method (tests/test_isolation.py). The accepted methods go straight
    to the view, which looks its object up itself (no second query)."""
    allowed = list(methods)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        refuse = require_http_methods(allowed)(view)

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                lookup(**kwargs)
                return refuse(request, *args, **kwargs)  # the 405, with its Allow header
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
