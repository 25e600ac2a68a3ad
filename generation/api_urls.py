"""The render runs and portraits API under /api/ inside a studio (see generation/api.py): runs/,
runs/<renderrun_id>/, runs/<renderrun_id>/items/<renderrunitem_id>/retry/, portraits/, portraits/<portrait_id>/
and its actions, photo-sets/<photoset_id>/instant-portraits/ (GET list, POST start)."""

from rest_framework.routers import SimpleRouter

from generation.api import InstantPortraitViewSet, PortraitViewSet, RunViewSet

router = SimpleRouter()
router.register("runs", RunViewSet, basename="run")
router.register("portraits", PortraitViewSet, basename="portrait")
router.register(
    r"photo-sets/(?P<photoset_id>[0-9]+)/instant-portraits", InstantPortraitViewSet, basename="instant-portrait"
)

urlpatterns = router.urls
