"""Factories of galleries' tenant-owned models (registered in tests/factories.FACTORIES, which imports this module)."""

from __future__ import annotations

from typing import Any

from django.db import models

from tests.generation.factories import make_portrait
from tests.registry import factory


def _portrait_and_gallery(tenant: Any) -> tuple[Any, Any]:
    from galleries.models import Gallery

    portrait = make_portrait(tenant)
    gallery = Gallery.objects.create(client=portrait.double.client, title="Portraits", created_by=tenant.owner)
    return portrait, gallery


@factory("galleries.GallerySettings")
def make_gallery_settings(tenant: Any) -> models.Model:
    from galleries.models import GallerySettings

    return GallerySettings.objects.get_or_create()[0]


@factory("galleries.Gallery")
def make_gallery(tenant: Any) -> models.Model:
    return _portrait_and_gallery(tenant)[1]


@factory("galleries.GalleryPortrait")
def make_gallery_portrait(tenant: Any) -> models.Model:
    from galleries.models import GalleryPortrait

    portrait, gallery = _portrait_and_gallery(tenant)
    return GalleryPortrait.objects.create(gallery=gallery, portrait=portrait)


@factory("galleries.GalleryRequest")
def make_gallery_request(tenant: Any) -> models.Model:
    from galleries.models import GalleryRequest

    portrait, gallery = _portrait_and_gallery(tenant)
    return GalleryRequest.objects.create(gallery=gallery, source=portrait)


@factory("galleries.Entitlement")
def make_entitlement(tenant: Any) -> models.Model:
    from galleries.models import Entitlement

    portrait, gallery = _portrait_and_gallery(tenant)
    return Entitlement.objects.create(gallery=gallery, portrait=portrait, granted_by=tenant.owner)


@factory("galleries.GalleryEvent")
def make_gallery_event(tenant: Any) -> models.Model:
    from galleries.models import GalleryEvent

    portrait, gallery = _portrait_and_gallery(tenant)
    return GalleryEvent.objects.create(gallery=gallery, kind=GalleryEvent.Kind.VIEW, portrait=portrait)


# --- Helpers of the studio-side gallery tests (tests/galleries/test_studio_*.py) ------------------------------

JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # starts like a JPEG: enough for the media view


def studio_double(tenant: Any, *, client: Any = None) -> Any:
    """A READY double (tiny demo model) of `client` (a new client when None). Call inside the tenant context."""
    from generation.models import DigitalDouble

    if client is None:
        from tests.clients.factories import make_client

        client = make_client(tenant)
    return DigitalDouble.objects.create(
        client=client,
        base_model="tiny-sd15",
        family="sd15",
        is_demo=True,
        trigger="ohwx",
        class_word=DigitalDouble.ClassWord.PERSON,
        status=DigitalDouble.Status.READY,
        created_by=tenant.owner,
    )


def portrait_with_files(
    tenant: Any, *, double: Any, run: Any = None, pick: bool = False, hidden: bool = False, rank: int = 1
) -> Any:
    """A portrait of a run with image, thumbnail and watermarked preview files in storage (tiny JPEG-like bytes).
    Call inside the tenant context, with private storage in a temporary folder."""
    from django.core.files.base import ContentFile

    from generation.models import Portrait

    portrait = Portrait(
        studio_id=tenant.studio.pk,
        double=double,
        run=run,
        recipe={"prompt": "photo of {subject}", "seed": rank},
        likeness=60.0,
        rank=rank,
        is_pick=pick,
        is_hidden=hidden,
        is_demo=True,
    )
    portrait.image.save("portrait.jpg", ContentFile(JPEG_BYTES), save=False)
    portrait.thumbnail.save("thumbnail.jpg", ContentFile(JPEG_BYTES), save=False)
    portrait.preview.save("preview.jpg", ContentFile(JPEG_BYTES), save=False)
    portrait.save()
    return portrait


def run_with_portraits(tenant: Any, *, double: Any, picks: int = 2, others: int = 2, hidden_picks: int = 0) -> Any:
    """A client render run of the double with `picks` picked portraits, `others` not picked, and `hidden_picks`
    picked then hidden ones. Returns the run (its portraits: run.portraits). Inside the tenant context."""
    from generation.models import RenderRun

    run = RenderRun.objects.create(double=double, images=picks + others + hidden_picks, created_by=tenant.owner)
    rank = 1
    for _ in range(picks):
        portrait_with_files(tenant, double=double, run=run, pick=True, rank=rank)
        rank += 1
    for _ in range(others):
        portrait_with_files(tenant, double=double, run=run, rank=rank)
        rank += 1
    for _ in range(hidden_picks):
        portrait_with_files(tenant, double=double, run=run, pick=True, hidden=True, rank=rank)
        rank += 1
    return run


def use_private_storage(settings: Any, root: Any) -> None:
    """Private storage in a temporary folder (tests' `settings` fixture)."""
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
