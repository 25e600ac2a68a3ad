"""The galleries API's routes (included under /api/ inside a studio; the endpoints are listed in galleries/api.py).
Object ids are `<model>_id` (gallery_id, portrait_id, entitlement_id): the isolation matrix attacks each with the
other studio's ids."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from galleries import api

router = SimpleRouter()
router.register("galleries", api.GalleryViewSet, basename="api-gallery")
router.register(r"galleries/(?P<gallery_id>[0-9]+)/entitlements", api.EntitlementViewSet, basename="api-entitlement")

urlpatterns = [
    path("gallery-settings/", api.GallerySettingsView.as_view(), name="api-gallery-settings"),
    *router.urls,
]
