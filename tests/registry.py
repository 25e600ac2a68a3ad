"""The registry every app's factories register in (tests/<app>/factories.py): `@factory("app.Model")`. Importing
it imports no app's factories, so an app's factories module can be imported first; tests/factories.py loads them
all."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.db import models

Factory = Callable[[Any], models.Model]
FACTORIES: dict[str, Factory] = {}


def factory(label: str) -> Callable[[Factory], Factory]:
    def register(func: Factory) -> Factory:
        FACTORIES[label.lower()] = func
        return func

    return register


def unique(label: str) -> str:
    """A unique name for a row: `label` with a random suffix."""
    return f"{label}-{secrets.token_hex(4)}"
