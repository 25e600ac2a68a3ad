"""The daily usage rollup (issue 16): `CreditUsageDay`, the credits each studio used per day (minus the sum of its
RESERVE, SETTLE and RELEASE entries of that day, the day in settings.TIME_ZONE), kept with every ledger write so
that the billing page reads a month of usage in at most 31 rows. Filled here from the whole ledger by one grouped
aggregate (SQLite and PostgreSQL), in the platform context so that row-level security lets an owner role that is
not a superuser see every studio's rows. On PostgreSQL the new table gets its row-level security and the ledger
table's grants here. Reversing drops the table (the ledger is untouched)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from tenants.context import platform_context
from tenants.rls import apply_row_level_security


def backfill_usage(apps, schema_editor):
    CreditEntry = apps.get_model("billing", "CreditEntry")
    CreditUsageDay = apps.get_model("billing", "CreditUsageDay")
    db = schema_editor.connection.alias
    with platform_context():
        grouped = (
            CreditEntry.objects.using(db)
            .filter(kind__in=["reserve", "settle", "release"])
            .annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
            .order_by()
            .values("studio_id", "day")
            .annotate(total=Sum("amount"))
            .values_list("studio_id", "day", "total")
        )
        rows = (
            CreditUsageDay(studio_id=studio_id, day=day, used=-int(total or 0))
            for studio_id, day, total in grouped.iterator(chunk_size=5000)
        )
        CreditUsageDay.objects.using(db).bulk_create(rows, batch_size=5000)


def secure_like_the_ledger(apps, schema_editor):
    """On PostgreSQL, at once rather than at the end of `migrate` (tenants.signals' post_migrate, which a migration
    run by the executor alone, as tests/test_migrations.py does, never sends): row-level security with the
    isolation policy, and every grant that another role holds on the ledger's table, on this one too."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    apply_row_level_security(connection, ["billing_creditusageday"])
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT grantee, privilege_type FROM information_schema.role_table_grants
               WHERE table_schema = current_schema() AND table_name = 'billing_creditentry'
               AND grantee NOT IN (current_user, 'PUBLIC')"""
        )
        for grantee, privilege in cursor.fetchall():
            cursor.execute(f"GRANT {privilege} ON billing_creditusageday TO {qn(grantee)}")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_running_balance"),
    ]

    operations = [
        migrations.CreateModel(
            name="CreditUsageDay",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                (
                    "used",
                    models.IntegerField(
                        default=0, help_text="Credits used that day: reservations less what was given back."
                    ),
                ),
                (
                    "studio",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.studio",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "credit usage days",
                "ordering": ["-day"],
                "indexes": [models.Index(fields=["studio", "-day"], name="creditusage_studio_day")],
                "constraints": [models.UniqueConstraint(fields=("studio", "day"), name="creditusage_one_per_day")],
            },
        ),
        migrations.RunPython(secure_like_the_ledger, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(backfill_usage, migrations.RunPython.noop, elidable=False),
    ]
