"""The job system moved to its own app (jobs/, the same table): generation's foreign keys name jobs.Job, and Job
leaves generation's state once every app's foreign keys name the new model."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0003_render_runs'),
        ('jobs', '0001_initial'),
        ('clients', '0002_job_in_jobs_app'),
        ('galleries', '0004_job_in_jobs_app'),
        ('billing', '0004_job_in_jobs_app'),
    ]

    operations = [
        # State only: the column and its foreign key to the table "generation_job" stay as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='digitaldouble',
                    name='job',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job'),
                ),
                migrations.AlterField(
                    model_name='renderrunitem',
                    name='job',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job'),
                ),
                migrations.AlterField(
                    model_name='portrait',
                    name='job',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job'),
                ),
                migrations.DeleteModel(name='Job'),
            ],
            database_operations=[],
        ),
    ]
