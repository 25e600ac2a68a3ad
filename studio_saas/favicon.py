"""`/favicon.ico` at the root of the platform and of every studio: a redirect to the static icon (the pages link
static/favicon.svg and static/favicon.ico themselves; this answers browsers and tools that just ask the root)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(static("favicon.ico"))
