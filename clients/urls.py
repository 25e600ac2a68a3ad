"""The studio's client pages, inside a studio at /clients/ (object ids are `<model>_id`: see
tests/test_isolation.py). URL names are global like the rest of the studio's pages."""

from django.urls import path

from clients import views, views_groups

SET = "<int:client_id>/sets/<int:photoset_id>/"

urlpatterns = [
    path("", views.client_list, name="clients"),
    path("new/", views.client_create, name="client_create"),
    path("groups/", views_groups.group_list, name="group_list"),
    path("groups/new/", views_groups.group_create, name="group_create"),
    path("groups/<int:clientgroup_id>/", views_groups.group_detail, name="group_detail"),
    path("groups/<int:clientgroup_id>/delete/", views_groups.group_delete, name="group_delete"),
    path("consent-text/", views.consent_text, name="consent_text"),
    path("<int:client_id>/", views.client_detail, name="client_detail"),
    path("<int:client_id>/delete/", views.client_erase, name="client_erase"),
    path("<int:client_id>/export/", views.client_export, name="client_export"),
    path("<int:client_id>/sets/new/", views.photoset_create, name="photoset_create"),
    path(SET, views.photoset_detail, name="photoset_detail"),
    path(SET + "status/", views.photoset_status, name="photoset_status"),
    path(SET + "upload/", views.photoset_upload, name="photoset_upload"),
    path(SET + "links/new/", views.upload_link_create, name="upload_link_create"),
    path(SET + "links/<int:uploadlink_id>/revoke/", views.upload_link_revoke, name="upload_link_revoke"),
    path(SET + "links/<int:uploadlink_id>/send/", views.upload_link_send, name="upload_link_send"),
]
