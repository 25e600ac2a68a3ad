"""The dashboard, the studio's branding (layout, logo), and the static assets the layout needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext

from tenants.context import tenant_context
from tenants.models import Role, Studio
from tests.conftest import add_member, expected_queries

pytestmark = pytest.mark.django_db

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def _make_jobs(tenant, count: int, **fields) -> list:
    from jobs.models import Job

    with tenant_context(tenant.studio):
        return [Job.objects.create(kind=f"demo.job{i}", created_by=tenant.owner, **fields) for i in range(count)]


# --- Dashboard ------------------------------------------------------------------------------------------------


def test_dashboard_shows_the_studio_and_its_shortcuts(client_a, two_tenants):
    a, _ = two_tenants
    response = client_a.get(f"{a.prefix}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Studio A</h1>" in body
    assert 'data-css-brand="#aa3366"' in body  # the studio colour, set as --brand by static/js/css-vars.js
    assert f'href="{a.prefix}/members/"' in body
    assert f'href="{a.prefix}/members/invite/"' in body  # owners can invite
    assert "Sign out" in body and f'action="{a.prefix}/accounts/logout/"' in body
    assert "Studio B" not in body
    assert 'aria-current="page">Dashboard' in body


def test_dashboard_for_staff_has_no_manager_shortcuts(client, two_tenants):
    a, _ = two_tenants
    client.force_login(add_member(a, "staff@studio-a.example", Role.STAFF))
    body = client.get(f"{a.prefix}/").content.decode()
    assert f'href="{a.prefix}/members/"' in body
    assert "/members/invite/" not in body
    assert "API keys" not in body and ">Admin<" not in body


def test_dashboard_lists_recent_jobs_of_this_studio_only(client_a, two_tenants):
    a, b = two_tenants
    _make_jobs(a, 2, state="running", progress=40, progress_message="Rendering portraits")
    _make_jobs(b, 1, progress_message="Secret work of studio B")
    body = client_a.get(f"{a.prefix}/").content.decode()
    assert "Rendering portraits" in body
    assert '<span class="pct-40"></span>' in body  # the bar's width, as a class (no inline style: CSP)
    assert "Secret work of studio B" not in body
    # A running job makes the list refresh itself with htmx.
    assert 'hx-trigger="every 5s"' in body


def test_dashboard_without_jobs_says_so(client_a, tenant_a):
    body = client_a.get(f"{tenant_a.prefix}/").content.decode()
    assert "No jobs yet" in body
    assert "hx-trigger" not in body


def test_dashboard_query_count_is_fixed(client_a, two_tenants, django_assert_max_num_queries):
    a, _ = two_tenants
    url = f"{a.prefix}/"
    _make_jobs(a, 1)
    with CaptureQueriesContext(connection) as one:
        client_a.get(url)
    _make_jobs(a, 5)
    add_member(a, "m1@studio-a.example", Role.STAFF)
    with CaptureQueriesContext(connection) as many:
        client_a.get(url)
    assert len(one.captured_queries) == len(many.captured_queries)
    # The floor (session, user, membership), members and invitations, the studio's work (tests/tenants/
    # test_dashboard.py counts it at 1 and at 1,000 clients), the billing row and the recent jobs.
    with django_assert_max_num_queries(expected_queries(postgresql=32, sqlite=30)):
        client_a.get(url)


def test_dashboard_needs_a_member(client, two_tenants):
    a, b = two_tenants
    response = client.get(f"{a.prefix}/")
    assert response.status_code == 302
    assert response["Location"] == f"{a.prefix}/accounts/login/?next={a.prefix}/"
    client.force_login(b.owner)
    assert client.get(f"{a.prefix}/").status_code == 404


def test_nav_links_to_pages_that_exist(client_a, tenant_a):
    from django.urls import NoReverseMatch, reverse

    body = client_a.get(f"{tenant_a.prefix}/").content.decode()
    for name, label in (("jobs", "Jobs"), ("api_keys", "API keys"), ("admin:index", "Admin")):
        try:
            reverse(name, urlconf=settings.STUDIO_URLCONF)
        except NoReverseMatch:
            continue
        assert f">{label}</a>" in body, label


# --- Branding -------------------------------------------------------------------------------------------------


@pytest.fixture
def media(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": None},
        },
    }
    return tmp_path


def test_logo_is_served_for_the_studio_and_shown_on_its_pages(client, two_tenants, media):
    a, b = two_tenants
    assert client.get(f"{a.prefix}/branding/logo/").status_code == 404
    studio = Studio.objects.get(pk=a.studio.pk)
    studio.logo.save("logo.png", ContentFile(PNG))
    response = client.get(f"{a.prefix}/branding/logo/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    login = client.get(f"{a.prefix}/accounts/login/").content.decode()
    assert f'src="{a.prefix}/branding/logo/"' in login
    # The other studio has no logo: its logo URL is a 404, not studio A's picture.
    assert client.get(f"{b.prefix}/branding/logo/").status_code == 404


def test_logo_that_is_not_an_image_is_not_served_as_one(client, two_tenants, media):
    a, _ = two_tenants
    studio = Studio.objects.get(pk=a.studio.pk)
    studio.logo.save("logo.svg", ContentFile(b"<svg onload='alert(1)'></svg>"))
    response = client.get(f"{a.prefix}/branding/logo/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_brand_colour_filters():
    template = Template("{% load studio_tags %}{{ a|brand_contrast }} {{ b|brand_contrast }} {{ c|safe_brand }}")
    rendered = template.render(Context({"a": "#ffffff", "b": "#1f2937", "c": "red;}</style>"}))
    assert rendered == "#111827 #ffffff #1f2937"


def test_duration_filter():
    from datetime import timedelta

    from tenants.templatetags.studio_tags import duration

    assert duration(timedelta(minutes=15)) == "15 minutes"
    assert duration(timedelta(hours=1)) == "1 hour"
    assert duration(timedelta(hours=2, minutes=30)) == "2 hours 30 minutes"
    assert duration(timedelta(seconds=61)) == "2 minutes"
    assert duration("nonsense") == ""


def test_optional_url_is_empty_for_missing_pages():
    template = Template("{% load studio_tags %}[{% optional_url 'no-such-page' %}]")
    assert template.render(Context({})) == "[]"


# --- Static assets --------------------------------------------------------------------------------------------


def test_htmx_is_vendored_with_its_licence():
    path = Path(settings.BASE_DIR) / "static" / "js" / "htmx.min.js"
    text = path.read_text()
    assert text.startswith("/*! htmx.org 2.")
    assert "Zero-Clause BSD" in text.splitlines()[0]
    assert "htmx" in text and len(text) > 40_000


def test_stylesheet_styles_the_layout_classes():
    css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    for selector in (
        ".container",
        ".card",
        ".narrow",
        ".btn",
        ".btn-primary",
        ".btn-danger",
        ".table",
        ".progress",
        ".progress > span",
        ".muted",
        ".grid",
        ".messages",
        ".form-row",
        ".badge",
        ".topbar",
        "var(--brand)",
        "@media (min-width",
    ):
        assert selector in css, selector


def test_static_files_are_found_by_the_finders():
    from django.contrib.staticfiles import finders

    assert finders.find("js/htmx.min.js") and finders.find("css/app.css")


def test_messages_link_the_site_paths_they_name_and_stay_escaped() -> None:
    from tenants.templatetags.studio_tags import link_paths

    out = link_paths("Out of credits: upgrade on the billing page: /s/lumiere/billing/. <b>Thanks</b>")
    assert '<a href="/s/lumiere/billing/">/s/lumiere/billing/</a>.' in out
    assert "&lt;b&gt;Thanks&lt;/b&gt;" in out  # everything else is escaped text
    assert link_paths("a/b/ and http://x.example/y/ stay text") == "a/b/ and http://x.example/y/ stay text"
