"""Which studio a request is for: custom domain, then subdomain of the platform domain, then `/s/<slug>/`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port

from tenants.models import RESERVED_SLUGS, Studio

# DOTALL and \Z: a path with a newline (%0A) in it is still the studio's (`.` and `$` would stop at it).
PATH_PREFIX_RE = re.compile(r"^/s/(?P<slug>[a-z0-9-]{1,50})(?P<rest>/.*)?\Z", re.DOTALL)


@dataclass(frozen=True)
class Resolution:
    """`slug` is what the request named (None: a platform URL); `studio` is None when nothing usable matched."""

    slug: str | None
    studio: Studio | None
    via: str  # "domain", "subdomain", "path" or "platform"
    path_info: str | None = None  # the path after the /s/<slug> prefix
    prefix: str = ""  # "/s/<slug>" when resolved by path


def _active(**lookup: str) -> Studio | None:
    studio = Studio.objects.filter(**lookup).first()
    if studio is None or not studio.is_active:
        return None
    return studio


def resolve_studio(request: HttpRequest) -> Resolution:
    host, _port = split_domain_port(request.get_host())
    host = host.lower().rstrip(".")
    platform = settings.PLATFORM_DOMAIN.lower()

    if host and host not in settings.PLATFORM_HOSTS and not host.endswith("." + platform):
        studio = _active(custom_domain=host)
        if studio is not None:
            return Resolution(studio.slug, studio, "domain")
    if host.endswith("." + platform):
        sub = host[: -len(platform) - 1]
        if sub and "." not in sub and sub not in RESERVED_SLUGS:
            return Resolution(sub, _active(slug=sub), "subdomain")

    match = PATH_PREFIX_RE.match(request.path_info)
    if match:
        slug = match["slug"]
        return Resolution(slug, _active(slug=slug), "path", path_info=match["rest"] or "/", prefix=f"/s/{slug}")
    return Resolution(None, None, "platform")
