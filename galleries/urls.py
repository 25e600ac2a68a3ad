"""Studio pages of galleries at /galleries/ (object ids are `<model>_id`: `gallery_id`, `portrait_id`,
`entitlement_id`, `client_id`, `renderrun_id`; see tests/test_isolation.py). Names start with `gallery_` (the
navigation marks the Galleries tab by that prefix)."""

from django.urls import path

from galleries import views

GALLERY = "<int:gallery_id>/"

urlpatterns = [
    path("", views.gallery_list, name="gallery_list"),
    path("settings/", views.gallery_settings, name="gallery_settings"),
    path("new/<int:client_id>/", views.gallery_new, name="gallery_new"),
    path("from-run/<int:renderrun_id>/", views.gallery_from_run, name="gallery_from_run"),
    path(GALLERY, views.gallery_detail, name="gallery_detail"),
    path(GALLERY + "edit/", views.gallery_edit, name="gallery_edit"),
    path(GALLERY + "password/", views.gallery_password, name="gallery_set_password"),
    path(GALLERY + "pin/", views.gallery_pin, name="gallery_set_pin"),
    path(GALLERY + "unlock/", views.gallery_unlock_secrets, name="gallery_unlock_secrets"),
    path(GALLERY + "portraits/add/", views.gallery_portraits_add, name="gallery_portraits_add"),
    path(
        GALLERY + "portraits/<int:portrait_id>/remove/", views.gallery_portrait_remove, name="gallery_portrait_remove"
    ),
    path(GALLERY + "cover/", views.gallery_cover, name="gallery_cover"),
    path(GALLERY + "share/", views.gallery_share, name="gallery_share"),
    path(GALLERY + "revoke/", views.gallery_revoke, name="gallery_revoke"),
    path(GALLERY + "restore/", views.gallery_restore, name="gallery_restore"),
    path(GALLERY + "entitlements/grant/", views.gallery_grant, name="gallery_grant"),
    path(
        GALLERY + "entitlements/<int:entitlement_id>/revoke/",
        views.gallery_entitlement_revoke,
        name="gallery_entitlement_revoke",
    ),
]
