"""Helpers of the client-side gallery tests (no tests here): private storage in a temporary folder, a client
with a READY double and real portrait files (full-resolution PNG, WebP thumbnail, watermarked JPEG preview made
by generation.watermark), and galleries made straight with the ORM (as the studio's services would)."""

from __future__ import annotations

import html
import io
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from PIL import Image

from tests.conftest import Tenant

PASSWORD = "sunset-harbour"
PIN = "4821"


@pytest.fixture(name="private_storage")
def private_storage_fixture(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "private-media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """The password throttle lives in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def portrait_files(seed: int, text: str, size: tuple[int, int] = (160, 200)) -> tuple[bytes, bytes, bytes]:
    """A full-resolution PNG (a gradient, different per seed), its 512 px WebP thumbnail and its watermarked
    1024 px JPEG preview, made the way the render job makes them."""
    from engine.images import encode_clean
    from generation.watermark import watermark

    width, height = size
    image = Image.new("RGB", size)
    pixels = [(40 + x // 2 + seed * 10, 60 + y // 2, (seed * 60) % 200) for y in range(height) for x in range(width)]
    image.putdata(pixels)
    png = encode_clean(image, format="PNG")
    thumbnail = encode_clean(image, format="WEBP", quality=85, max_side=512)
    preview = encode_clean(watermark(image, text, max_side=1024), format="JPEG", quality=85)
    return png, thumbnail, preview


def make_client_double(tenant: Tenant, name: str = "") -> Any:
    """A client of the studio and their READY double (inside the studio's context)."""
    from generation.models import DigitalDouble
    from tests.clients.factories import make_client

    client = make_client(tenant)
    if name:
        client.name = name
        client.save(update_fields=["name"])
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


def make_portraits(tenant: Tenant, double: Any, count: int, *, recipe: dict | None = None, files: bool = True) -> list:
    """Portraits of a double with real files (or none, for the query-count tests)."""
    from generation import portraits as portrait_service
    from generation.models import Portrait

    portraits = []
    for i in range(count):
        base = {"seed": i, "width": 160, "height": 200, **(recipe or {})}
        if files:
            png, thumbnail, preview = portrait_files(i, tenant.studio.name)
            portrait = portrait_service.store_portrait(
                double=double,
                job=None,
                item=None,
                version=None,
                png=png,
                thumbnail=thumbnail,
                preview=preview,
                recipe=base,
                likeness=80.0,
                flags=[],
                rank=i + 1,
                is_pick=True,
                is_demo=True,
            )
        else:
            portrait = Portrait(double=double, recipe=base, likeness=80.0, rank=i + 1, is_demo=True)
            portrait.preview.name = f"portraits/{tenant.studio.pk}/none-{i}.jpg"
            portrait.image.name = f"portraits/{tenant.studio.pk}/none-{i}.png"
        portraits.append(portrait)
    if not files:
        portraits = Portrait.objects.bulk_create(portraits)
    return portraits


def make_gallery(
    client: Any,
    portraits: list,
    *,
    password: str = "",
    pin: str = "",
    expires_in: timedelta | None = timedelta(days=20),
    **fields: Any,
) -> Any:
    """A gallery of these portraits, in this order (inside the studio's context)."""
    from galleries.models import Gallery, GalleryPortrait

    gallery = Gallery.objects.create(
        client=client,
        title=fields.pop("title", "Spring portraits"),
        message=fields.pop("message", "Hello! Choose your favorites."),
        password_hash=make_password(password) if password else "",
        pin_hash=make_password(pin) if pin else "",
        expires_at=timezone.now() + expires_in if expires_in is not None else None,
        **fields,
    )
    GalleryPortrait.objects.bulk_create(
        [GalleryPortrait(gallery=gallery, portrait=p, position=i) for i, p in enumerate(portraits)]
    )
    return gallery


def entitle(gallery: Any, portrait: Any, *, size: str = "full", limit: int = 0) -> Any:
    from galleries.models import Entitlement

    return Entitlement.objects.create(gallery=gallery, portrait=portrait, size=size, download_limit=limit)


@dataclass
class Scene:
    """A studio's client with a gallery of portraits, another client of the same studio, and their URLs."""

    tenant: Tenant
    double: Any
    portraits: list
    gallery: Any
    other_double: Any = None
    other_portraits: list = field(default_factory=list)

    @property
    def client(self) -> Any:
        return self.double.client

    @property
    def url(self) -> str:
        return f"{self.tenant.prefix}/g/{self.gallery.token}/"

    def portrait_url(self, portrait: Any, action: str = "") -> str:
        return f"{self.url}p/{portrait.pk}/{action + '/' if action else ''}"


def make_scene(tenant: Tenant, count: int = 3, **gallery_fields: Any) -> Scene:
    from tenants.context import tenant_context

    with tenant_context(tenant.studio):
        double = make_client_double(tenant, name="Ada Client")
        portraits = make_portraits(tenant, double, count)
        other = make_client_double(tenant, name="Bea Other")
        other_portraits = make_portraits(tenant, other, 1)
        gallery = make_gallery(double.client, portraits, **gallery_fields)
    return Scene(tenant, double, portraits, gallery, other, other_portraits)


def forged_token(studio_id: int, portrait_id: int, field: str, audience: str, **extra: Any) -> str:
    """A media token of a portrait signed exactly as the studio signs (only the audience check can refuse it)."""
    from django.core import signing

    from tenants.media import media_salt

    payload = {"m": "generation.portrait", "p": portrait_id, "f": field, "a": audience, "e": int(time.time()) + 600}
    return signing.dumps({**payload, **extra}, salt=media_salt(studio_id), compress=True)


def text(response: Any) -> str:
    """The page as the client reads it (entities decoded)."""
    return html.unescape(response.content.decode())


def streamed(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
