"""The studio's billing pages at /billing/ inside a studio."""

from django.urls import include, path

from billing import views, views_coupons, views_orders, views_webhooks

urlpatterns = [
    path("", views.billing, name="billing"),
    path("plan/", views.change_plan, name="billing_change_plan"),
    path("payment-method/", views.payment_method, name="billing_payment_method"),
    path("orders/", views_orders.order_list_page, name="billing_orders"),
    path("orders/<int:order_id>/", views_orders.order_detail, name="billing_order"),
    path("orders/<int:order_id>/fulfilment/", views_orders.order_fulfilment, name="billing_order_fulfilment"),
    path("orders/<int:order_id>/refund/", views_orders.refund_order, name="billing_order_refund"),
    path("prices/", include("billing.urls_prices")),  # the price sheet and Stripe Connect onboarding
    path("coupons/", views_coupons.coupons_page, name="billing_coupons"),
    path("webhooks/", views_webhooks.webhooks, name="webhooks"),
    path("webhooks/<int:webhookendpoint_id>/", views_webhooks.webhook_endpoint, name="webhook_endpoint"),
    path(
        "webhooks/<int:webhookendpoint_id>/delete/",
        views_webhooks.webhook_endpoint_delete,
        name="webhook_endpoint_delete",
    ),
    path(
        "webhooks/<int:webhookendpoint_id>/roll-secret/",
        views_webhooks.webhook_endpoint_roll,
        name="webhook_endpoint_roll",
    ),
    path(
        "webhooks/deliveries/<int:webhookdelivery_id>/replay/",
        views_webhooks.webhook_delivery_replay,
        name="webhook_delivery_replay",
    ),  # the price sheet and Stripe Connect onboarding
]
