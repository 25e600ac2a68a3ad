"""The render runs and portraits API under /api/ inside a studio (see generation/api.py): runs/,
runs/<renderrun_id>/, runs/<renderrun_id>/items/<renderrunitem_id>/retry/, portraits/, portraits/<portrait_id>/
and its actions."""

from rest_framework.routers import SimpleRouter

from generation.api import PortraitViewSet, RunViewSet

router = SimpleRouter()
router.register("runs", RunViewSet, basename="run")
router.register("portraits", PortraitViewSet, basename="portrait")

urlpatterns = router.urls
