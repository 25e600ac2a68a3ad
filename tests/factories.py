"""A factory for every tenant-owned model, so that isolation tests can give each studio one row of each.

    @factory("app_label.ModelName")
    def make_thing(tenant: Tenant) -> Model:      # called inside tenant_context(tenant.studio)
        return Thing.objects.create(...)

`build_all(tenant)` makes one row of every tenant-owned model for a studio and fails, naming the model and
this file, when a tenant-owned model has no factory: a new model can't skip the isolation tests.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import models
from django.utils import timezone

from tenants.context import tenant_context
from tenants.models import is_tenant_owned

Factory = Callable[[Any], models.Model]
FACTORIES: dict[str, Factory] = {}


def factory(label: str) -> Callable[[Factory], Factory]:
    def register(func: Factory) -> Factory:
        FACTORIES[label.lower()] = func
        return func

    return register


def tenant_models() -> list[type[models.Model]]:
    """Every concrete tenant-owned model (managed or not), sorted by label."""
    return sorted((m for m in apps.get_models() if is_tenant_owned(m)), key=lambda m: m._meta.label)


def missing_factories() -> list[str]:
    return [m._meta.label for m in tenant_models() if m._meta.label_lower not in FACTORIES]


def build(model: type[models.Model], tenant: Any) -> models.Model:
    func = FACTORIES.get(model._meta.label_lower)
    if func is None:
        raise LookupError(
            f"{model._meta.label} is tenant-owned but tests/factories.py has no factory for it: add one with "
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
            "Tenant-owned models without a factory in tests/factories.py: "
            + ", ".join(missing)
            + '. Add one per model with @factory("app_label.ModelName").'
        )
    return {model: build(model, tenant) for model in tenant_models()}


def _unique(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}"


# --- tenants --------------------------------------------------------------------------------------------------


@factory("tenants.Membership")
def make_membership(tenant: Any) -> models.Model:
    from tenants.models import Membership, Role, User

    user = User.objects.create_user(f"{_unique('member')}@{tenant.studio.slug}.example", None)
    return Membership.objects.create(user=user, role=Role.STAFF)


@factory("tenants.Invitation")
def make_invitation(tenant: Any) -> models.Model:
    from tenants.models import Invitation, Role

    return Invitation.objects.create(
        email=f"{_unique('invitee')}@example.com",
        role=Role.STAFF,
        token=secrets.token_urlsafe(32),
        invited_by=tenant.owner,
        expires_at=timezone.now() + timedelta(days=7),
    )


@factory("tenants.ApiKey")
def make_api_key(tenant: Any) -> models.Model:
    from tenants.api_keys import create_api_key

    api_key, raw_key = create_api_key(name=_unique("key"), created_by=tenant.owner)
    api_key.raw_key = raw_key  # for tests that call the API with it
    return api_key


# --- generation -----------------------------------------------------------------------------------------------


@factory("jobs.Job")
def make_job(tenant: Any) -> models.Model:
    from jobs.models import Job

    return Job.objects.create(kind="demo.countdown", payload={}, created_by=tenant.owner)


# --- clients --------------------------------------------------------------------------------------------------


@factory("clients.ConsentText")
def make_consent_text(tenant: Any) -> models.Model:
    from clients.models import ConsentText

    latest = ConsentText.objects.order_by("-version").first()
    return ConsentText.objects.create(version=(latest.version + 1) if latest else 1, body="I agree.")


@factory("clients.Client")
def make_client(tenant: Any) -> models.Model:
    from clients.models import Client

    return Client.objects.create(name=_unique("Client"), email=f"{_unique('c')}@example.com")


@factory("clients.PhotoSet")
def make_photo_set(tenant: Any) -> models.Model:
    from clients.models import PhotoSet

    return PhotoSet.objects.create(client=make_client(tenant), retention_until=timezone.now() + timedelta(days=7))


@factory("clients.Photo")
def make_photo(tenant: Any) -> models.Model:
    from clients.models import Photo

    return Photo.objects.create(photo_set=make_photo_set(tenant), original_name="photo.jpg")


@factory("clients.UploadLink")
def make_upload_link(tenant: Any) -> models.Model:
    from clients.models import UploadLink

    return UploadLink.objects.create(photo_set=make_photo_set(tenant), expires_at=timezone.now() + timedelta(days=7))


@factory("clients.DeletionReceipt")
def make_deletion_receipt(tenant: Any) -> models.Model:
    from clients.models import DeletionReceipt

    return DeletionReceipt.objects.create(kind=DeletionReceipt.Kind.RETENTION, counts={"photos": 1})


# --- digital doubles and portraits (generation) ---------------------------------------------------------------


@factory("generation.DigitalDouble")
def make_double(tenant: Any) -> models.Model:
    from generation.models import DigitalDouble

    photo_set = make_photo_set(tenant)
    return DigitalDouble.objects.create(
        client=photo_set.client,
        photo_set=photo_set,
        base_model="tiny-sd15",
        family="sd15",
        is_demo=True,
        trigger="ohwx",
        class_word=DigitalDouble.ClassWord.PERSON,
        status=DigitalDouble.Status.READY,
        created_by=tenant.owner,
    )


@factory("generation.Portrait")
def make_portrait(tenant: Any) -> models.Model:
    from generation.models import Portrait

    return Portrait.objects.create(
        double=make_double(tenant), recipe={"prompt": "photo of {subject}", "seed": 0}, likeness=50.0, rank=1
    )


# Factories of later apps live in their own modules (one per app, so parallel work doesn't touch this file);
# importing them registers their @factory functions.
from tests import factories_templates  # noqa: E402,F401

# isort: split
from tests import factories_runs  # noqa: E402,F401

# isort: split
from tests import factories_galleries  # noqa: E402,F401

# isort: split
from tests import factories_billing  # noqa: E402,F401
