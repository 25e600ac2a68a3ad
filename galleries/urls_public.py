"""A client's gallery at /g/<gallery_token>/ (no account: the unguessable token is the credential; see
galleries/access.py). Another studio's token is unknown here: 404, whatever the method."""

from django.urls import path

from galleries import views_public as views

urlpatterns = [
    path("<str:gallery_token>/", views.gallery_public, name="gallery_public"),
    path("<str:gallery_token>/unlock/", views.gallery_unlock, name="gallery_unlock"),
    path("<str:gallery_token>/pin/", views.gallery_pin, name="gallery_pin"),
    path("<str:gallery_token>/updates/", views.gallery_updates, name="gallery_updates"),
    path("<str:gallery_token>/download-all/", views.gallery_download_all, name="gallery_download_all"),
    path("<str:gallery_token>/zip/", views.gallery_zip, name="gallery_zip"),
    path("<str:gallery_token>/p/<int:portrait_id>/", views.gallery_portrait, name="gallery_portrait"),
    path("<str:gallery_token>/p/<int:portrait_id>/favorite/", views.gallery_favorite, name="gallery_favorite"),
    path("<str:gallery_token>/p/<int:portrait_id>/more/", views.gallery_more_like_me, name="gallery_more_like_me"),
    path("<str:gallery_token>/p/<int:portrait_id>/download/", views.gallery_download, name="gallery_download"),
]
