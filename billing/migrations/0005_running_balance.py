"""The running credit balance (issue 16): `StudioBilling.balance`, the sum of the studio's ledger kept with every
ledger write, so that reading it costs one row. Filled here from each studio's ledger (a billing row is made for a
studio that has entries and none yet). Runs in the platform context, so that row-level security lets an owner
role that is not a superuser see every studio's rows. Reversing drops the column (the ledger is untouched)."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from tenants.context import platform_context


def backfill_balances(apps, schema_editor):
    StudioBilling = apps.get_model("billing", "StudioBilling")
    CreditEntry = apps.get_model("billing", "CreditEntry")
    db = schema_editor.connection.alias
    with platform_context():
        entries = CreditEntry.objects.using(db)
        have_row = set(StudioBilling.objects.using(db).values_list("studio_id", flat=True))
        missing = sorted(set(entries.values_list("studio_id", flat=True).distinct()) - have_row)
        StudioBilling.objects.using(db).bulk_create([StudioBilling(studio_id=studio_id) for studio_id in missing])
        # One UPDATE: each row's balance from one grouped sum of its studio's entries (SQLite and PostgreSQL).
        total = (
            entries.filter(studio_id=OuterRef("studio_id"))
            .order_by()
            .values("studio_id")
            .annotate(total=Sum("amount"))
            .values("total")
        )
        StudioBilling.objects.using(db).update(
            balance=Coalesce(Subquery(total, output_field=models.BigIntegerField()), Value(0))
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_job_in_jobs_app"),
    ]

    operations = [
        migrations.AddField(
            model_name="studiobilling",
            name="balance",
            field=models.BigIntegerField(
                default=0,
                editable=False,
                help_text="GPU credits: the sum of the studio's ledger, kept running (moved only by ledger writes).",
            ),
        ),
        migrations.RunPython(backfill_balances, migrations.RunPython.noop, elidable=False),
    ]
