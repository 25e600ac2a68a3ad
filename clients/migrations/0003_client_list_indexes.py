"""The clients list's index: its order with the tiebreaker (studio, name, id), so a keyset page is an index range
read in order, whatever the page's depth.

No trigram index for the search: under row-level security PostgreSQL uses only leakproof operators as index
conditions, and LIKE (what `icontains` compiles to) is not leakproof, so the application role's searches could
never use one (measured: docs/architecture.md, "Lists without counts"). The search walks this index in name order
and stops at a page of matches."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0002_job_in_jobs_app"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="client",
            index=models.Index(fields=["studio", "name", "id"], name="client_studio_name"),
        ),
    ]
