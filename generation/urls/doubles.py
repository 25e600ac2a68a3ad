"""Digital double pages, inside a studio at /doubles/ (object ids are `<model>_id`: `photoset_id`,
`digitaldouble_id`; see tests/test_isolation.py). Its portraits' actions ("more like me", re-roll) are the
runs' (generation/urls/runs.py).. URL names are global like the rest of the
studio's pages."""

from django.urls import path

from generation.views import doubles as views
from generation.views import instant as instant_views

DOUBLE = "<int:digitaldouble_id>/"

urlpatterns = [
    path("train/<int:photoset_id>/", views.double_train, name="double_train"),
    path(DOUBLE, views.double_detail, name="double_detail"),
    path(DOUBLE + "status/", views.double_status, name="double_status"),
    path(DOUBLE + "render/", views.double_render, name="double_render"),
    path(DOUBLE + "delete/", views.double_delete, name="double_delete"),
]

# Instant portraits of a photo set, before its double (generation/views/instant.py).
urlpatterns += [
    path("instant/<int:photoset_id>/", instant_views.instant_start, name="instant_start"),
    path("instant/<int:photoset_id>/status/", instant_views.instant_status, name="instant_status"),
]
