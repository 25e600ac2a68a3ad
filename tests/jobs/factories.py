"""Factories of the job system's Job, registered in tests/factories.FACTORIES (which imports this module)."""

from __future__ import annotations

from typing import Any

from django.db import models

from tests.registry import factory


@factory("jobs.Job")
def make_job(tenant: Any) -> models.Model:
    from jobs.models import Job

    return Job.objects.create(kind="demo.countdown", payload={}, created_by=tenant.owner)
