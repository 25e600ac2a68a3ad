"""The billing API's routes (included under /api/ inside a studio; the endpoints are listed in billing/api.py).
Object ids are `<model>_id` (order_id): the isolation matrix attacks each with the other studio's ids."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from billing import api, api_coupons, api_prices, api_webhooks

router = SimpleRouter()
router.register("orders", api.OrderViewSet, basename="api-order")
router.register("print-products", api.PrintProductViewSet, basename="api-printproduct")
router.register("packages", api_prices.PackageViewSet, basename="api-package")
router.register("webhook-endpoints", api_webhooks.EndpointViewSet, basename="api-webhookendpoint")
router.register("coupons", api_coupons.CouponViewSet, basename="api-coupon")
router.register("gallery-sales", api_coupons.SaleViewSet, basename="api-gallerysale")
router.register("webhook-deliveries", api_webhooks.DeliveryViewSet, basename="api-webhookdelivery")

urlpatterns = [
    path("billing/", api.BillingView.as_view(), name="api-billing"),
    path("price-sheet/", api_prices.PriceSheetView.as_view(), name="api-price-sheet"),
    *router.urls,
]
