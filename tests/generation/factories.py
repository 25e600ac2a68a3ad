"""Factories of generation's tenant-owned models (digital doubles, portraits, render runs and their items), registered
in tests/factories.FACTORIES (which imports this module)."""

from __future__ import annotations

from typing import Any

from django.db import models

from tests.clients.factories import make_photo_set
from tests.jobs.factories import make_job
from tests.registry import factory


@factory("generation.DigitalDouble")
def make_double(tenant: Any) -> models.Model:
    from generation.models import DigitalDouble

    photo_set = make_photo_set(tenant)
    return DigitalDouble.objects.create(
        client=photo_set.client,
        photo_set=photo_set,
        base_model="tiny-sd15",
        family="sd15",
        is_demo=True,
        trigger="ohwx",
        class_word=DigitalDouble.ClassWord.PERSON,
        status=DigitalDouble.Status.READY,
        created_by=tenant.owner,
    )


@factory("generation.Portrait")
def make_portrait(tenant: Any) -> models.Model:
    from generation.models import Portrait

    return Portrait.objects.create(
        double=make_double(tenant), recipe={"prompt": "photo of {subject}", "seed": 0}, likeness=50.0, rank=1
    )


@factory("generation.RenderRun")
def make_render_run(tenant: Any) -> models.Model:
    from generation.models import RenderRun

    return RenderRun.objects.create(double=make_double(tenant), images=2, gpu_seconds=3.5, created_by=tenant.owner)


@factory("generation.RenderRunItem")
def make_render_run_item(tenant: Any) -> models.Model:
    from generation.models import RenderRunItem
    from tests.templates_app.factories import make_template_version

    return RenderRunItem.objects.create(
        run=make_render_run(tenant),
        template_version=make_template_version(tenant),
        images=2,
        position=0,
        seeds=[1, 2],
        job=make_job(tenant),
    )


@factory("generation.RunSubject")
def make_run_subject(tenant: Any) -> models.Model:
    from generation.models import RunSubject

    run = make_render_run(tenant)
    return RunSubject.objects.create(run=run, slot=1, double=run.double)


@factory("generation.PortraitSubject")
def make_portrait_subject(tenant: Any) -> models.Model:
    from generation.models import PortraitSubject

    portrait = make_portrait(tenant)
    return PortraitSubject.objects.create(portrait=portrait, slot=1, double=portrait.double, face=[0, 0, 8, 8])


@factory("generation.InstantPortrait")
def make_instant_portrait(tenant: Any) -> models.Model:
    from generation.models import InstantPortrait

    return InstantPortrait.objects.create(
        photo_set=make_photo_set(tenant), recipe={"instant": True, "seed": 0}, likeness=50.0, rank=1
    )
