"""The job system moves from generation/ to its own app: the model changes app, the table stays
("generation_job"), so no row moves. The content type (and with it the permissions and admin log) follows."""

import django.core.validators
import django.db.models.deletion
import jobs.models
from django.conf import settings
from django.db import migrations, models


def content_type_to_jobs(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="jobs", model="job").exists():
        ContentType.objects.filter(app_label="generation", model="job").update(app_label="jobs")


def content_type_to_generation(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="generation", model="job").exists():
        ContentType.objects.filter(app_label="jobs", model="job").update(app_label="generation")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('generation', '0003_render_runs'),
        ('tenants', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Job',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(help_text="The registered job kind, e.g. 'demo.countdown'.", max_length=100)),
                        ('state', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=16)),
                        ('progress', models.PositiveSmallIntegerField(default=0, validators=[django.core.validators.MaxValueValidator(100)])),
                        ('progress_message', models.CharField(blank=True, max_length=255)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('max_attempts', models.PositiveSmallIntegerField(default=jobs.models.default_max_attempts)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('error', models.TextField(blank=True, help_text='A message for people; tracebacks go to the log.')),
                        ('payload', models.JSONField(blank=True, default=dict)),
                        ('result', models.JSONField(blank=True, null=True)),
                        ('cluster', models.CharField(choices=[('default', 'Default (CPU)'), ('gpu', 'GPU')], default='default', max_length=16)),
                        ('cancel_requested', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('studio', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.studio')),
                    ],
                    options={
                        'db_table': 'generation_job',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['studio', 'state'], name='job_studio_state'), models.Index(fields=['studio', '-created_at'], name='job_studio_created'), models.Index(fields=['studio', 'kind'], name='job_studio_kind'), models.Index(condition=models.Q(('state', 'running')), fields=['heartbeat_at'], name='job_running_heartbeat')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('progress__lte', 100)), name='job_progress_lte_100'), models.CheckConstraint(condition=models.Q(('max_attempts__gte', 1)), name='job_max_attempts_gte_1')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_jobs, content_type_to_generation),
    ]
