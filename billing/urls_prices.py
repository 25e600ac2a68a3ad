"""The studio's price sheet and Stripe Connect onboarding (included at /billing/prices/)."""

from django.urls import path

from billing import views_prices as views

urlpatterns = [
    path("", views.price_sheet, name="billing_prices"),
    path("connect/", views.connect_onboarding, name="billing_connect"),
]
