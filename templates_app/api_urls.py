"""The templates API's routes (included under /api/ inside a studio; the endpoints are listed in
templates_app/api.py). Object ids are `<model>_id` (template_id, templateversion_id, stylelora_id): the isolation
matrix attacks each with the other studio's ids."""

from rest_framework.routers import SimpleRouter

from templates_app import api

VERSIONS = r"templates/(?P<template_id>[0-9]+)/versions"

router = SimpleRouter()
router.register("templates", api.TemplateViewSet, basename="api-template")
router.register(VERSIONS, api.TemplateVersionViewSet, basename="api-templateversion")
router.register("style-loras", api.StyleLoraViewSet, basename="api-stylelora")
router.register("starters", api.StarterViewSet, basename="api-starter")

urlpatterns = router.urls
