"""The jobs API, under /api/ inside a studio: /api/jobs/, /api/jobs/<job_id>/, .../cancel/, .../retry/."""

from rest_framework.routers import SimpleRouter

from jobs.api import JobViewSet

router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")

urlpatterns = router.urls
