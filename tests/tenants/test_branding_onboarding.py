"""The owner's branding page (tenants/branding.py: the logo an untrusted upload, stored as a clean PNG) and the
dashboard's getting-started checklist (tenants/onboarding.py, a step from each app)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from clients.models import Client as EndClient
from templates_app.models import Template
from tenants.context import tenant_context
from tenants.models import Role, Studio
from tests.conftest import Tenant, add_member, make_tenant

pytestmark = pytest.mark.django_db


def _image(fmt: str = "PNG", size: tuple[int, int] = (800, 400), *, exif: bool = False) -> bytes:
    image = Image.new("RGBA" if fmt == "PNG" else "RGB", size, (200, 30, 90, 255) if fmt == "PNG" else (200, 30, 90))
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "Secret Camera"  # Make
        kwargs["exif"] = data.tobytes()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _post(client: Client, tenant: Tenant, **fields: Any) -> Any:
    data = {"primary_color": "#0f766e", "watermark_text": "Lumière", **fields}
    return client.post(f"{tenant.prefix}/branding/", data)


def test_the_owner_sets_logo_colour_and_watermark_and_the_logo_is_stored_clean(
    client_a: Client, tenant_a: Tenant, settings: Any, tmp_path: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    page = client_a.get(f"{tenant_a.prefix}/branding/")
    assert page.status_code == 200 and "Preview" in page.content.decode()
    logo = SimpleUploadedFile("logo.jpg", _image("JPEG", (2000, 1000), exif=True), content_type="image/jpeg")
    response = _post(client_a, tenant_a, logo=logo)
    assert response.status_code == 302
    studio = Studio.objects.get(pk=tenant_a.studio.pk)
    assert (studio.primary_color, studio.watermark_text) == ("#0f766e", "Lumière")
    with studio.logo.open("rb") as handle:
        stored = Image.open(io.BytesIO(handle.read()))
    assert stored.format == "PNG" and max(stored.size) == 512 and not stored.getexif()  # re-encoded, no EXIF
    served = client_a.get(f"{tenant_a.prefix}/branding/logo/")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"

    # A new logo replaces the old file; "remove" removes it.
    first = studio.logo.name
    with django_capture_on_commit_callbacks(execute=True):  # the old file goes once the new one is saved
        assert _post(client_a, tenant_a, logo=SimpleUploadedFile("l.png", _image(), "image/png")).status_code == 302
    studio.refresh_from_db()
    assert studio.logo.name != first and not studio.logo.storage.exists(first)
    assert _post(client_a, tenant_a, remove_logo="on").status_code == 302
    studio.refresh_from_db()
    assert not studio.logo


@pytest.mark.parametrize(
    ("payload", "name", "message"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "logo.svg", "This logo can"),
        (b"just some text", "logo.png", "This logo can"),
        (_image("PNG")[:200], "logo.png", "This logo can"),  # truncated
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024 + 10), "huge.png", "This logo can"),
    ],
)
def test_a_bad_logo_is_refused_with_the_reason_and_nothing_changes(
    client_a: Client, tenant_a: Tenant, settings: Any, tmp_path: Any, payload: bytes, name: str, message: str
) -> None:
    settings.MEDIA_ROOT = tmp_path
    before = Studio.objects.get(pk=tenant_a.studio.pk)
    response = _post(client_a, tenant_a, logo=SimpleUploadedFile(name, payload, "image/png"))
    assert response.status_code == 400 and message in response.content.decode()
    after = Studio.objects.get(pk=tenant_a.studio.pk)
    assert (after.primary_color, after.watermark_text, after.logo.name) == (
        before.primary_color,
        before.watermark_text,
        before.logo.name,
    )


def test_a_bad_colour_is_a_400_and_only_the_owner_may_brand(client: Client, two_tenants: Any) -> None:
    a, b = two_tenants
    client.force_login(a.owner)
    response = _post(client, a, primary_color="red")
    assert response.status_code == 400 and "Use a colour like #1f2937." in response.content.decode()
    manager = add_member(a, "manager@studio-a.example", Role.MANAGER)
    client.force_login(manager)
    assert client.get(f"{a.prefix}/branding/").status_code == 404
    assert _post(client, a).status_code == 404
    client.force_login(b.owner)  # another studio's owner: not found
    assert _post(client, a).status_code == 404
    assert Studio.objects.get(pk=a.studio.pk).primary_color == "#aa3366"


def test_the_checklist_follows_each_step_and_can_be_hidden(client: Client) -> None:
    new = make_tenant("new-studio", "New Studio")  # the default colour, no logo: nothing done
    client.force_login(new.owner)
    url = f"{new.prefix}/"
    html = client.get(url).content.decode()
    assert "Get your studio ready" in html and "0 of 4 done" in html
    assert html.index("Get your studio ready") < html.index("Needs you now")  # the checklist comes first
    assert f'href="{new.prefix}/branding/"' in html and f'href="{new.prefix}/clients/new/"' in html

    with tenant_context(new.studio):
        EndClient.objects.create(name="Ada Client", email="ada@client.example")
        Template.objects.create(name="Window light", status=Template.Status.PUBLISHED, created_by=new.owner)
    Studio.objects.filter(pk=new.studio.pk).update(primary_color="#0f766e")
    html = client.get(url).content.decode()
    assert "3 of 4 done" in html and "Set up payments" in html

    staff = add_member(new, "staff@new-studio.example", Role.STAFF)
    client.force_login(staff)
    assert "Hide this checklist" not in client.get(url).content.decode()
    assert client.post(f"{new.prefix}/onboarding/hide/").status_code == 404  # owners and managers only
    client.force_login(new.owner)
    assert client.post(f"{new.prefix}/onboarding/hide/").status_code == 302
    assert "Get your studio ready" not in client.get(url).content.decode()
