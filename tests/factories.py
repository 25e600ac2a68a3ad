"""Factories: one for every tenant-owned model, so that isolation tests can give each studio one row of each.
They live beside the tests of their app (tests/<app>/factories.py), each registered in tests/registry.py with

    @factory("app_label.ModelName")
    def make_thing(tenant: Tenant) -> Model:      # called inside tenant_context(tenant.studio)
        return Thing.objects.create(...)

and this module imports every app's factories (APPS), so the registry is complete wherever it is used.

`build_all(tenant)` makes one row of every tenant-owned model for a studio and fails, naming the model and
this file, when a tenant-owned model has no factory: a new model can't skip the isolation tests.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps
from django.db import models

from tenants.context import tenant_context
from tenants.models import is_tenant_owned
from tests.registry import FACTORIES


def tenant_models() -> list[type[models.Model]]:
    """Every concrete tenant-owned model (managed or not), sorted by label."""
    return sorted((m for m in apps.get_models() if is_tenant_owned(m)), key=lambda m: m._meta.label)


def missing_factories() -> list[str]:
    return [m._meta.label for m in tenant_models() if m._meta.label_lower not in FACTORIES]


def build(model: type[models.Model], tenant: Any) -> models.Model:
    func = FACTORIES.get(model._meta.label_lower)
    if func is None:
        raise LookupError(
            f"{model._meta.label} is tenant-owned but has no factory: add one to tests/<app>/factories.py with "
            f'@factory("{model._meta.label}") so that the isolation tests create and attack its rows.'
        )
    with tenant_context(tenant.studio):
        obj = func(tenant)
    if not isinstance(obj, model) or obj.pk is None:
        raise TypeError(f"The factory for {model._meta.label} must return a saved {model.__name__}")
    return obj


def build_all(tenant: Any) -> dict[type[models.Model], models.Model]:
    """One saved row of every tenant-owned model for the tenant's studio."""
    missing = missing_factories()
    if missing:
        raise LookupError(
            "Tenant-owned models without a factory (tests/<app>/factories.py): "
            + ", ".join(missing)
            + '. Add one per model with @factory("app_label.ModelName").'
        )
    return {model: build(model, tenant) for model in tenant_models()}


# --- tenants --------------------------------------------------------------------------------------------------


#: The apps whose factories register here, bottom layer first (a factory may use those of the apps below it).
APPS = ("tenants", "jobs", "clients", "templates_app", "generation", "galleries", "billing")

for _app in APPS:
    import_module(f"tests.{_app}.factories")
