"""The jobs list's index gets its tiebreaker: job_studio_created becomes (studio, created_at DESC, id DESC), the
list's whole order, so a keyset page (jobs.keyset) is an index range read in order, with no sort, at any depth.

The index keeps its name and is rebuilt through the schema editor (right for PostgreSQL and SQLite). Unapplying
this migration keeps the new index: it serves every query the old one served, the table's schema stays the one
the job move (0001, state only) left behind, and the older state's name still finds it (so unapplying further,
back into generation's migrations, drops it by that name). Applying again rebuilds it only if it isn't already
the new one."""

from django.db import migrations, models

NAME = "job_studio_created"
NEW = models.Index(fields=["studio", "-created_at", "-id"], name=NAME)
OLD = models.Index(fields=["studio", "-created_at"], name=NAME)


def rebuild_index(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Job._meta.db_table).get(NAME)
    if found and found.get("index") and found["columns"] == ["studio_id", "created_at", "id"]:
        return
    if found:
        schema_editor.remove_index(Job, OLD)
    schema_editor.add_index(Job, NEW)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="job", name=NAME),
                migrations.AddIndex(model_name="job", index=NEW),
            ],
            database_operations=[migrations.RunPython(rebuild_index, migrations.RunPython.noop)],
        ),
    ]
