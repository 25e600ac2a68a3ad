"""The studio API (under /api/ inside a studio)."""

from django.urls import include, path

urlpatterns = [
    path("", include("tenants.api_urls")),
    path("", include("jobs.api_urls")),
    path("", include("clients.api_urls")),
    path("", include("templates_app.api_urls")),
    path("", include("generation.api_urls")),
    path("", include("galleries.api_urls")),
    path("", include("billing.api_urls")),
]
