"""Platform URLs: everything that is not inside a studio (no /s/<slug>/, no studio domain)."""

from django.contrib import admin
from django.urls import include, path

from studio_saas.favicon import favicon

urlpatterns = [
    path("", include("tenants.urls_platform")),
    path("", include("studio_saas.ops_urls")),
    path("stripe/", include("billing.urls_webhooks")),  # Stripe's webhooks (platform and Connect)
    path("api/", include("studio_saas.api_docs_urls")),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
]
