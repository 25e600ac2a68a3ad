"""Factories of tenants' tenant-owned models (memberships, invitations, API keys), registered in
tests/factories.FACTORIES (which imports this module)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.db import models
from django.utils import timezone

from tests.registry import factory, unique


@factory("tenants.Membership")
def make_membership(tenant: Any) -> models.Model:
    from tenants.models import Membership, Role, User

    user = User.objects.create_user(f"{unique('member')}@{tenant.studio.slug}.example", None)
    return Membership.objects.create(user=user, role=Role.STAFF)


@factory("tenants.Invitation")
def make_invitation(tenant: Any) -> models.Model:
    from tenants.models import Invitation, Role

    return Invitation.objects.create(
        email=f"{unique('invitee')}@example.com",
        role=Role.STAFF,
        token=secrets.token_urlsafe(32),
        invited_by=tenant.owner,
        expires_at=timezone.now() + timedelta(days=7),
    )


@factory("tenants.ApiKey")
def make_api_key(tenant: Any) -> models.Model:
    from tenants.api_keys import create_api_key

    api_key, raw_key = create_api_key(name=unique("key"), created_by=tenant.owner)
    api_key.raw_key = raw_key  # for tests that call the API with it
    return api_key
