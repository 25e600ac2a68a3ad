"""The gunicorn application bench/web.py serves: the project's own WSGI application, plus one page that exists
for the benchmark only, the **floor** under every studio page: `/s/<slug>/bench-floor/`, a page for the studio's
signed-in members (the same decorator as every studio page: tenant resolution, the request's transaction with the
tenant's SET LOCAL, session, user, membership) that renders the studio layout (base.html: top bar, navigation)
with nothing in it. What a real page costs above this line is its own work; the line itself is what any studio
page pays before it does anything."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import clear_url_caches, path

from studio_saas.wsgi import application  # noqa: F401  (sets Django up; gunicorn serves this name)
from tenants.access import studio_member_required

FLOOR_PATH = "bench-floor/"


@studio_member_required
def floor(request: HttpRequest) -> HttpResponse:
    return render(request, "base.html", {"current": "floor"})


def _install() -> None:
    from studio_saas import urls_studio

    if not any(getattr(p, "name", None) == "bench_floor" for p in urls_studio.urlpatterns):
        urls_studio.urlpatterns.insert(0, path(FLOOR_PATH, floor, name="bench_floor"))
        clear_url_caches()


_install()
