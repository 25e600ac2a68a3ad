"""The Content-Security-Policy middleware: django-csp's, with the origin of a local Stripe fake in form-action.

The policy itself is CONTENT_SECURITY_POLICY in studio_saas/settings.py (docs/architecture.md "Security headers").
Its form-action names Stripe's hosted pages (Checkout, the customer portal, Connect onboarding), because the forms
that start them answer with a redirect there and browsers check form-action on a form's redirects too. With
STRIPE_API_BASE (localstripe, the tests' fake server) those pages are served by that server instead: its origin
is added here, per request, from the setting as it is then."""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def stripe_fake_origin() -> str | None:
    """The scheme://host[:port] of STRIPE_API_BASE, or None when it is not set (Stripe's own pages)."""
    parts = urlsplit(getattr(settings, "STRIPE_API_BASE", "") or "")
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


class CSPMiddleware(BaseCSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        origin = stripe_fake_origin()
        if origin is not None:
            update = dict(parts.update or {})
            current = update.get("form-action") or []
            update["form-action"] = [*([current] if isinstance(current, str) else current), origin]
            parts.update = update
        return parts
