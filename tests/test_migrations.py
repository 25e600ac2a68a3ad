"""Issue 14: the job system moved from generation/ to its own app (jobs/) without moving a row. A database made
before the move (the migrations up to generation 0003, clients 0001, galleries 0003, billing 0003) migrates to
the new layout with its rows, its foreign keys and its content type (so permissions and the admin's log) intact,
and the schema is exactly the one it had: the move is state only.

The test walks the real migration graph on the test database: back to the old layout, rows written through the
old layout's models (as a deployment of that version would have them), then forward again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import environ
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from billing.models import CreditEntry
from clients.models import PhotoSet
from galleries.models import GalleryRequest
from generation.models import DigitalDouble
from jobs.models import Job
from tenants.context import platform_context, tenant_context
from tests.conftest import Tenant
from tests.factories import FACTORIES

pytestmark = pytest.mark.django_db(transaction=True)

#: The layout before issue 14: Job lived in generation, and every foreign key to it named generation.Job.
BEFORE_THE_MOVE = [
    ("generation", "0003_render_runs"),
    ("clients", "0001_initial"),
    ("galleries", "0003_secret_lock"),
    ("billing", "0003_order_kept_after_erasure"),
    ("jobs", None),
]


def _schema() -> dict[str, Any]:
    """The columns and constraints of the job table and of the tables that point at it."""
    tables = ["generation_job", "clients_photoset", "billing_creditentry", "galleries_galleryrequest"]
    with connection.cursor() as cursor:
        out: dict[str, Any] = {}
        for table in tables:
            description = connection.introspection.get_table_description(cursor, table)
            constraints = connection.introspection.get_constraints(cursor, table)
            out[table] = (
                sorted((c.name, c.type_code, c.null_ok) for c in description),
                sorted(
                    (name, tuple(c["columns"]), c["foreign_key"], c["unique"], c["primary_key"])
                    for name, c in constraints.items()
                ),
            )
    return out


@contextmanager
def _as_owner() -> Iterator[None]:
    """Migrations change tables: on PostgreSQL they run as the owner role (as `manage.py migrate` does), not as
    the application role the suite runs as."""
    if connection.vendor != "postgresql":
        yield
        return
    owner = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    saved = {key: connection.settings_dict.get(key) for key in ("USER", "PASSWORD")}
    connection.close()
    connection.settings_dict.update(USER=owner["USER"], PASSWORD=owner.get("PASSWORD") or "")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def _leaves(executor: MigrationExecutor) -> list[tuple[str, str]]:
    executor.loader.build_graph()
    return executor.loader.graph.leaf_nodes()


def test_a_database_of_the_old_layout_migrates_to_jobs_with_its_rows(tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        photo_set = FACTORIES["clients.photoset"](tenant_a)
        double = FACTORIES["generation.digitaldouble"](tenant_a)
    schema_now = _schema()
    with _as_owner():
        job, content_type = _migrate_back_write_and_forward(tenant_a, photo_set, double, schema_now)
    assert _schema() == schema_now
    _check_rows(tenant_a, photo_set, double, job, content_type)


def _migrate_back_write_and_forward(tenant_a: Tenant, photo_set: Any, double: Any, schema_now: Any) -> tuple[Any, Any]:
    executor = MigrationExecutor(connection)
    latest = _leaves(executor)
    try:
        executor.migrate(BEFORE_THE_MOVE)
        assert _schema() == schema_now  # the move changes no table, column or constraint
        old = MigrationExecutor(connection).loader.project_state(BEFORE_THE_MOVE[:-1]).apps
        OldJob = old.get_model("generation", "Job")
        assert OldJob._meta.db_table == "generation_job"
        with platform_context(), transaction.atomic():
            job = OldJob.objects.create(
                studio_id=tenant_a.studio.pk,
                kind="double.train",
                state="succeeded",
                payload={"double_id": double.pk},
                result={"images": 3},
                max_attempts=3,
            )
            old.get_model("clients", "PhotoSet").objects.filter(pk=photo_set.pk).update(validation_job_id=job.pk)
            old.get_model("generation", "DigitalDouble").objects.filter(pk=double.pk).update(job_id=job.pk)
            old.get_model("billing", "CreditEntry").objects.create(
                studio_id=tenant_a.studio.pk, kind="reserve", amount=-4, job_id=job.pk, reference="train_sd15:1x4"
            )
        content_type = ContentType.objects.get(app_label="generation", model="job")
        MigrationExecutor(connection).migrate(latest)
    finally:
        MigrationExecutor(connection).migrate(_leaves(MigrationExecutor(connection)))
    return job, content_type


def _check_rows(tenant_a: Tenant, photo_set: Any, double: Any, job: Any, content_type: Any) -> None:
    with tenant_context(tenant_a.studio):
        moved = Job.objects.get(pk=job.pk)
        assert (moved.kind, moved.state, moved.payload, moved.result) == (
            "double.train",
            "succeeded",
            {"double_id": double.pk},
            {"images": 3},
        )
        assert PhotoSet.objects.select_related("validation_job").get(pk=photo_set.pk).validation_job == moved
        assert DigitalDouble.objects.get(pk=double.pk).job == moved
        assert CreditEntry.objects.get(job=moved).amount == -4
        assert not GalleryRequest.objects.exists()
    # The content type follows the model (same row, so its permissions and the admin's log entries stay).
    assert ContentType.objects.get(app_label="jobs", model="job").pk == content_type.pk
    assert not ContentType.objects.filter(app_label="generation", model="job").exists()


def test_the_sweep_schedule_is_renamed_once(db: Any) -> None:
    """The django-q2 schedule of the sweeper was named after generation; the next migrate renames it (and never
    leaves two sweepers)."""
    from django_q.models import Schedule

    from jobs.apps import OLD_SWEEP_SCHEDULE_NAME, SWEEP_FUNC, SWEEP_SCHEDULE_NAME, ensure_sweep_schedule

    Schedule.objects.all().delete()
    Schedule.objects.create(
        name=OLD_SWEEP_SCHEDULE_NAME, func="generation.tasks.sweep_stale_jobs", schedule_type=Schedule.MINUTES
    )
    ensure_sweep_schedule(sender=None)
    ensure_sweep_schedule(sender=None)
    assert list(Schedule.objects.values_list("name", "func")) == [(SWEEP_SCHEDULE_NAME, SWEEP_FUNC)]
