"""Template pages inside a studio at /templates/ (object ids are `<model>_id`: `template_id`,
`templateversion_id`, `stylelora_id`; see tests/test_isolation.py). Names start with `template_`/`style_` (or are
`starter_catalog`) so the navigation marks "Templates" as the current section."""

from django.urls import path

from templates_app import views

T = "<int:template_id>/"

urlpatterns = [
    path("", views.template_list, name="template_list"),
    path("new/", views.template_create, name="template_create"),
    path("starters/", views.starter_catalog, name="starter_catalog"),
    path("starters/copy/", views.template_starter_copy, name="template_starter_copy"),
    path("styles/", views.style_lora_list, name="style_lora_list"),
    path("styles/upload/", views.style_lora_upload, name="style_lora_upload"),
    path("styles/<int:stylelora_id>/delete/", views.style_lora_delete, name="style_lora_delete"),
    path(T, views.template_detail, name="template_detail"),
    path(T + "publish/", views.template_publish, name="template_publish"),
    path(T + "unpublish/", views.template_unpublish, name="template_unpublish"),
    path(T + "duplicate/", views.template_duplicate, name="template_duplicate"),
    path(T + "archive/", views.template_archive, name="template_archive"),
    path(T + "unarchive/", views.template_unarchive, name="template_unarchive"),
    path(T + "versions/compare/", views.template_compare, name="template_compare"),
    path(T + "versions/<int:templateversion_id>/restore/", views.template_restore, name="template_restore"),
    path(T + "versions/<int:templateversion_id>/mask.png", views.template_version_mask, name="template_version_mask"),
    path(T + "versions/<int:templateversion_id>/pose.png", views.template_version_pose, name="template_version_pose"),
]
