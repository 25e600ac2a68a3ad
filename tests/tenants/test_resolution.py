"""Tenant resolution: custom domain, then subdomain of the platform domain, then the /s/<slug>/ prefix."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from tenants.context import current_studio
from tenants.middleware import TenantMiddleware
from tenants.models import Studio

pytestmark = pytest.mark.django_db

seen: dict = {}


def _view(request):
    seen.update(
        studio=request.studio,
        context=current_studio(),
        path_info=request.path_info,
        urlconf=getattr(request, "urlconf", None),
    )
    return HttpResponse("ok")


def _run(path: str, host: str = "localhost"):
    seen.clear()
    request = RequestFactory().get(path, HTTP_HOST=host)
    return TenantMiddleware(_view)(request)


@override_settings(PLATFORM_DOMAIN="studios.test", ALLOWED_HOSTS=["*"])
def test_custom_domain_wins_then_subdomain_then_path(two_tenants):
    a, b = two_tenants
    Studio.objects.filter(pk=a.studio.pk).update(custom_domain="portraits.example.com")

    assert _run("/anything/", host="portraits.example.com").status_code == 200
    assert seen["studio"] == a.studio and seen["context"] == a.studio and seen["path_info"] == "/anything/"

    assert _run("/x/", host="studio-b.studios.test").status_code == 200
    assert seen["studio"] == b.studio and seen["urlconf"] == "studio_saas.urls_studio"

    assert _run("/s/studio-b/members/", host="studios.test").status_code == 200
    assert seen["studio"] == b.studio and seen["path_info"] == "/members/"

    # The custom domain decides even when the path names another studio.
    _run("/s/studio-b/", host="portraits.example.com")
    assert seen["studio"] == a.studio


def test_platform_urls_have_no_studio(two_tenants):
    assert _run("/healthz").status_code == 200
    assert seen["studio"] is None and seen["context"] is None and seen["urlconf"] is None


@pytest.mark.parametrize("path", ["/s/nope/", "/s/nope/members/"])
def test_unknown_studio_is_a_clear_404(two_tenants, path):
    response = _run(path)
    assert response.status_code == 404
    assert b"Studio not found" in response.content
    assert seen == {}


def test_suspended_studio_is_a_404_like_an_unknown_one(two_tenants):
    a, _ = two_tenants
    Studio.objects.filter(pk=a.studio.pk).update(status=Studio.Status.SUSPENDED)
    response = _run("/s/studio-a/")
    assert response.status_code == 404
    assert b"Studio not found" in response.content


@override_settings(PLATFORM_DOMAIN="studios.test", ALLOWED_HOSTS=["*"])
def test_unknown_subdomain_is_a_404(two_tenants):
    assert _run("/", host="ghost.studios.test").status_code == 404


def test_reverse_keeps_the_path_prefix_during_the_request(two_tenants):
    def view(request):
        seen["url"] = request.get_full_path()
        from django.urls import get_script_prefix

        seen["prefix"] = get_script_prefix()
        return HttpResponse("ok")

    request = RequestFactory().get("/s/studio-a/members/", HTTP_HOST="localhost")
    TenantMiddleware(view)(request)
    assert seen["prefix"] == "/s/studio-a/"
    from django.urls import get_script_prefix

    assert get_script_prefix() == "/"  # restored after the request
