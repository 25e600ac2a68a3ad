"""The billing API's routes (included under /api/ inside a studio; the endpoints are listed in billing/api.py).
Object ids are `<model>_id` (order_id): the isolation matrix attacks each with the other studio's ids."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from billing import api

router = SimpleRouter()
router.register("orders", api.OrderViewSet, basename="api-order")

urlpatterns = [
    path("billing/", api.BillingView.as_view(), name="api-billing"),
    *router.urls,
]
