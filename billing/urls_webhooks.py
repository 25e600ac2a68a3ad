"""Stripe's webhooks (platform URLconf): the platform's own events and its connected accounts' events."""

from django.urls import path

from billing import webhooks

urlpatterns = [
    path("webhook/", webhooks.platform_webhook, name="stripe_webhook"),
    path("connect-webhook/", webhooks.connect_webhook, name="stripe_connect_webhook"),
]
