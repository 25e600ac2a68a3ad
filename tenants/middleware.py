"""Tenant middleware: resolves the studio and runs the rest of the request inside its tenant context."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import get_script_prefix, set_script_prefix

from tenants.context import tenant_context
from tenants.resolution import resolve_studio

STUDIO_NOT_FOUND = "Studio not found: there is no active studio at this address."


class TenantMiddleware:
    """Studio requests get `request.studio`, the studio URLconf, the tenant context and one transaction
    (rolled back on a 5xx) whose SET LOCAL carries the studio to PostgreSQL row-level security.
    Platform requests (no studio named) get `request.studio = None` and the root URLconf.
    A named studio that is unknown or suspended gets a clear 404, the same for both: a page, or under /api/ the
    API's JSON error (studio_saas/api.py's format, as its OpenAPI schema documents)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        resolution = resolve_studio(request)
        request.studio = resolution.studio
        request.tenant_resolution = resolution
        if resolution.slug is None:
            return self.get_response(request)
        if resolution.studio is None:
            if (resolution.path_info or request.path_info).startswith("/api/"):
                return JsonResponse({"error": {"code": "not_found", "message": STUDIO_NOT_FOUND}}, status=404)
            return render(request, "tenants/studio_not_found.html", {"slug": resolution.slug}, status=404)

        request.urlconf = settings.STUDIO_URLCONF
        old_prefix = get_script_prefix()
        if resolution.prefix:
            request.path_info = resolution.path_info
            set_script_prefix(request.META.get("SCRIPT_NAME", "").rstrip("/") + resolution.prefix + "/")
        try:
            with tenant_context(resolution.studio), transaction.atomic():
                response = self.get_response(request)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
            return response
        finally:
            set_script_prefix(old_prefix)
