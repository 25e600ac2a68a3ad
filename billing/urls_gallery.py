"""Buying in a client gallery (checkout and its return pages), beside galleries.urls_public under /g/."""

from django.urls import path

from billing import views_gallery as views

urlpatterns = [
    path("<str:gallery_token>/buy/", views.gallery_buy, name="gallery_buy"),
    path("<str:gallery_token>/buy/print/", views.gallery_buy_print, name="gallery_buy_print"),
    path("<str:gallery_token>/p/<int:portrait_id>/print/", views.gallery_print, name="gallery_print"),
    path("<str:gallery_token>/buy/coupon/", views.gallery_coupon, name="gallery_coupon"),
    path("<str:gallery_token>/buy/success/", views.gallery_order_success, name="gallery_order_success"),
    path("<str:gallery_token>/buy/status/", views.gallery_order_status, name="gallery_order_status"),
]
