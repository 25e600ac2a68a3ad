"""Factories of the render runs' tenant-owned models (generation.RenderRun, generation.RenderRunItem), registered in
tests/factories.FACTORIES on import."""

from __future__ import annotations

from typing import Any

from django.db import models

from tests.factories import factory, make_double, make_job


@factory("generation.RenderRun")
def make_render_run(tenant: Any) -> models.Model:
    from generation.models import RenderRun

    return RenderRun.objects.create(double=make_double(tenant), images=2, gpu_seconds=3.5, created_by=tenant.owner)


@factory("generation.RenderRunItem")
def make_render_run_item(tenant: Any) -> models.Model:
    from generation.models import RenderRunItem
    from tests.factories_templates import make_template_version

    return RenderRunItem.objects.create(
        run=make_render_run(tenant),
        template_version=make_template_version(tenant),
        images=2,
        position=0,
        seeds=[1, 2],
        job=make_job(tenant),
    )
