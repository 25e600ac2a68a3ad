"""URLs inside a studio, after tenant resolution (custom domain, subdomain or /s/<slug>/ prefix).

Every view here runs in the studio's tenant context. Object ids in URLs are named `<model>_id` (or the admin's
`object_id`) so that tests/test_isolation.py can find and attack every one of them."""

from django.contrib import admin
from django.urls import include, path

from studio_saas import api_docs_urls
from studio_saas.favicon import favicon
from tenants.i18n import client_js_catalog

urlpatterns = [
    path("", include("tenants.urls")),
    path("", include("tenants.urls_api_keys")),
    path("jobs/", include("jobs.urls")),
    path("clients/", include("clients.urls")),
    path("doubles/", include("generation.urls.doubles")),  # digital doubles and their portraits
    path("templates/", include("templates_app.urls")),  # portrait templates, versions, style LoRAs, starters
    path("runs/", include("generation.urls.runs")),  # render runs, portraits, the designer's preview
    path("galleries/", include("galleries.urls")),  # the studio's side of client galleries
    path("g/", include("galleries.urls_public")),  # a client's gallery (share link, no account)
    path("g/", include("billing.urls_gallery")),  # buying in a gallery: checkout, success page
    path("billing/", include("billing.urls")),  # the studio's plan, credits, invoices, prices, Connect
    path("u/", include("clients.urls_public")),  # a client's self-upload link (no account)
    path("m/", include("clients.urls_messages")),  # a client's answer to a reminder: unsubscribe (no account)
    path("media/", include("tenants.urls_media")),  # private media through expiring signed links
    path("api/", include(api_docs_urls.studio_urlpatterns)),  # the API's docs (the same as the platform's)
    path("api/", include("studio_saas.api_urls")),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    # The client pages' script translations (tenants/i18n.py), by language.
    path("jsi18n/<str:language>/", client_js_catalog, name="client_js_catalog"),
]

# An unknown path under /api/ answers JSON; other pages keep Django's 404 page.
handler404 = "studio_saas.api.json_not_found"
