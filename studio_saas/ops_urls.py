from django.urls import path

from studio_saas import ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("ping", ops.ping, name="ping"),
    path("metrics", ops.metrics, name="metrics"),
]
