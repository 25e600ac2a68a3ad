"""The job system has its own app (jobs/): this foreign key now names jobs.Job, whose table is unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_order_kept_after_erasure'),
        ('jobs', '0001_initial'),
    ]

    operations = [
        # State only: the column and its foreign key to the table "generation_job" stay as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='creditentry',
                    name='job',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job'),
                ),
            ],
            database_operations=[],
        ),
    ]
