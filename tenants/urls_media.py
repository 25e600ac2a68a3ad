"""Private media inside a studio, at /media/<media_token>/: a signed, expiring link made by
tenants.media.signed_media_url. There is deliberately no other URL here: no index, no listing, no path-based
access to storage."""

from django.urls import path

from tenants import media

urlpatterns = [
    path("<str:media_token>/", media.serve_media, name=media.URL_NAME),
]
