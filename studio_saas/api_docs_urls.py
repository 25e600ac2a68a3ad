"""The studio API's documentation, served on the platform (mounted at /api/ by studio_saas/urls.py) and inside
every studio too (`studio_urlpatterns`, mounted at the studio's /api/ by studio_saas/urls_studio.py), so that an
integrator who opens `/s/<slug>/api/docs/` (or the studio's own domain) finds it.

The schema documents the API that every studio serves under its own address (`/s/<slug>/api/...`, the studio's
subdomain or custom domain): it is generated from the studio URLconf. Swagger UI loads its assets from
drf-spectacular-sidecar (static files), never from a CDN. (No Redoc page: drf-spectacular's Redoc template pulls
fonts from Google.) The page has no inline script or style (the Content-Security-Policy allows none)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from tenants.context import platform_context


class StudioApiSchemaView(SpectacularAPIView):
    """The OpenAPI schema of the studio API. Generated in the platform context: views' get_queryset() builds
    querysets of tenant-owned models (never evaluated here), which needs a context to be set."""

    urlconf = "studio_saas.urls_studio"
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)  # a platform view: not part of the studio API it documents
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with platform_context():
            return super().get(request, *args, **kwargs)


class _CheckedCredentials:
    """Inside a studio the docs stay public, but a credential that is sent is checked as on every studio API
    endpoint: another studio's API key (or a revoked one) is refused with 401, never served."""

    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    permission_classes = [AllowAny]

    def handle_exception(self, exc: Exception) -> Response:
        """The refusal in the API's JSON error format, whatever the docs page renders otherwise."""
        response = super().handle_exception(exc)  # type: ignore[misc]
        self.request.accepted_renderer = JSONRenderer()  # type: ignore[attr-defined]
        self.request.accepted_media_type = "application/json"  # type: ignore[attr-defined]
        return response


class StudioApiSchemaInStudioView(_CheckedCredentials, StudioApiSchemaView):
    """The same schema inside a studio: the request already runs in the studio's tenant context."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return SpectacularAPIView.get(self, request, *args, **kwargs)


class _PublicDocs:
    authentication_classes: list = []
    permission_classes = [AllowAny]


class _CspSwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI under the Content-Security-Policy: the split view serves its init script as a file of its own
    (`?script=`) instead of an inline <script>, and the page's template has no inline <style>."""

    template_name = "api_docs/swagger_ui.html"


class SwaggerView(_PublicDocs, _CspSwaggerView):
    pass


class StudioSwaggerView(_CheckedCredentials, _CspSwaggerView):
    pass


urlpatterns = [
    path("schema/", StudioApiSchemaView.as_view(), name="api-schema"),
    path("docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

# Inside a studio (names of their own: the studio URLconf reverses them under the studio's prefix or domain).
studio_urlpatterns = [
    path("schema/", StudioApiSchemaInStudioView.as_view(), name="studio-api-schema"),
    path("docs/", StudioSwaggerView.as_view(url_name="studio-api-schema"), name="studio-api-docs"),
]
