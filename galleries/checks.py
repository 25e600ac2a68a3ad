"""System checks of the galleries: the guessing budget of gallery secrets needs a cache that every process shares."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

#: Cache backends whose counts stay inside one process.
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.security, deploy=True)
def check_secret_budget_cache_is_shared(app_configs: Any = None, **kwargs: Any) -> list:
    """The wrong guesses of a gallery's password or PIN are counted in the default cache (galleries/access.py).
    A per-process cache gives every web process its own count, multiplying the budget by their number."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PER_PROCESS_CACHES:
        return []
    return [
        Warning(
            "Wrong gallery passwords and PINs are counted in a cache that each process keeps for itself "
            f"({backend.rsplit('.', 1)[-1]}), so every web process allows its own budget of guesses.",
            hint="Set REDIS_URL: the default cache is then Redis, shared by every process.",
            id="galleries.W001",
        )
    ]
