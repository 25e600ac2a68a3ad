"""The client's self-upload page, inside a studio at /u/<link_token>/: no account, the link's unguessable token
is the credential (see clients.views). Another studio's token is unknown here: 404."""

from django.urls import path

from clients import views

urlpatterns = [
    path("<str:link_token>/", views.self_upload, name="self_upload"),
    path("<str:link_token>/upload/", views.self_upload_files, name="self_upload_files"),
    path("<str:link_token>/photos/", views.self_upload_photos, name="self_upload_photos"),
]
