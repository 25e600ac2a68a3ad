"""Render run pages inside a studio at /runs/ (object ids are `<model>_id`: `renderrun_id`, `renderrunitem_id`,
`portrait_id`, `templateversion_id`, `digitaldouble_id`, `clientgroup_id`; see tests/test_isolation.py)."""

from django.urls import path

from generation.views import groups, portraits
from generation.views import runs as views

RUN = "<int:renderrun_id>/"
ITEM = RUN + "items/<int:renderrunitem_id>/"
PORTRAIT = "portraits/<int:portrait_id>/"

urlpatterns = [
    path("", views.run_list, name="run_list"),
    path("new/<int:digitaldouble_id>/", views.run_new, name="run_new"),
    path("new/<int:digitaldouble_id>/estimate/", views.run_estimate, name="run_estimate"),
    path("group/<int:clientgroup_id>/new/", groups.group_run_new, name="group_run_new"),
    path(RUN, views.run_detail, name="run_detail"),
    path(ITEM, views.run_item, name="run_item"),
    path(ITEM + "retry/", views.run_item_retry, name="run_item_retry"),
    path(PORTRAIT + "more-like-me/", portraits.portrait_more_like_me, name="run_portrait_more"),
    path(PORTRAIT + "reroll/", portraits.portrait_reroll, name="run_portrait_reroll"),
    path(PORTRAIT + "hide/", portraits.portrait_hide, name="run_portrait_hide"),
    path(PORTRAIT + "unhide/", portraits.portrait_unhide, name="run_portrait_unhide"),
    path(PORTRAIT + "pick/", portraits.portrait_pick, name="run_portrait_pick"),
    path(PORTRAIT + "unpick/", portraits.portrait_unpick, name="run_portrait_unpick"),
    path("preview/<int:templateversion_id>/", views.template_preview, name="template_preview"),
    path("sample/<int:digitaldouble_id>/", views.double_sample, name="double_sample"),
]
