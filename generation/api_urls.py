"""The render runs and portraits API under /api/ inside a studio (see generation/api.py): runs/,
runs/<renderrun_id>/, runs/<renderrun_id>/items/<renderrunitem_id>/retry/, portraits/, portraits/<portrait_id>/
and its actions, photo-sets/<photoset_id>/instant-portraits/ (GET list, POST start), doubles/ (GET list, POST
train), doubles/<digitaldouble_id>/ (GET, DELETE) and doubles/<digitaldouble_id>/test-render/ (POST)."""

from rest_framework.routers import SimpleRouter

from generation.api import DoubleViewSet, InstantPortraitViewSet, PortraitViewSet, RunViewSet

router = SimpleRouter()
router.register("doubles", DoubleViewSet, basename="double")
router.register("runs", RunViewSet, basename="run")
router.register("portraits", PortraitViewSet, basename="portrait")
router.register(
    r"photo-sets/(?P<photoset_id>[0-9]+)/instant-portraits", InstantPortraitViewSet, basename="instant-portrait"
)

urlpatterns = router.urls
