"""Rate limits every app counts the same way: django-ratelimit's counters in the default cache, with rates read
from settings at call time ("10/15m") and clients bucketed by address (an IPv6 /64 counts as one address).
Used by gallery secrets (galleries/access.py) and self-serve sign-up (tenants/signup.py)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_ratelimit.core import get_usage

RATE_RE = re.compile(r"^(?P<count>[0-9]+)/(?P<multiplier>[0-9]*)(?P<unit>[smhd])$")
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_setting(name: str, default: str) -> tuple[int, int]:
    """A "<count>/<period>" setting ("10/15m") as django-ratelimit's (count, seconds)."""
    value = str(getattr(settings, name, default) or default).strip()
    match = RATE_RE.match(value)
    seconds = int(match["multiplier"] or 1) * PERIODS[match["unit"]] if match else 0
    if match is None or int(match["count"]) < 1 or seconds < 1:
        raise ImproperlyConfigured(f'{name} must look like "10/15m" (a count of 1 or more per s, m, h or d).')
    return int(match["count"]), seconds


def client_ip(request: HttpRequest) -> str:
    """The client's address as the project reads it everywhere: REMOTE_ADDR (the proxy or WSGI server must set
    it to the client's; docs/galleries.md)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def address_bucket(request: HttpRequest, *, ipv6_prefix: int = 64) -> str:
    """Whose requests count together: an IPv4 address alone; an IPv6 address with its whole /64 (one home or one
    server gets a /64: its 2^64 addresses are one client); an IPv4-mapped IPv6 address as the IPv4 one."""
    raw = client_ip(request).strip()
    try:
        ip = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/{ipv6_prefix}", strict=False))
    return str(ip)


def usage(request: HttpRequest, group: str, value: str, rate: tuple[int, int], *, increment: bool) -> Any:
    """django-ratelimit's usage of `value`'s counter in `group` ({"count", "limit", "should_limit",
    "time_left"}; "limit" 0 when the cache failed), counting this request with `increment`; None when
    RATELIMIT_ENABLE is off."""
    return get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=increment)
