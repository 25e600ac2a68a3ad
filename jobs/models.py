"""Jobs: the truth about any long work (training, rendering, diagnostics).

A Job row is a small state machine::

    queued ──► running ──► succeeded
      │  ▲        │ │
      │  └────────┘ └────► failed ──┐        (running ► queued: retryable error or stale heartbeat,
      │                             │         while attempts remain)
      └──────────► cancelled ◄──────┘──► queued (manual retry of a failed or cancelled job)

The django-q2 task (jobs.tasks.run_job) takes only the job id and the studio id; everything else is read
from this row, so a task delivered twice, or late, changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tenants.models import TenantOwned


def default_max_attempts() -> int:
    """settings.JOB_MAX_ATTEMPTS, read when a job is created (never at import time)."""
    return int(settings.JOB_MAX_ATTEMPTS)


class Job(TenantOwned):
    """One piece of long work for a studio, run by a django-q2 worker of its cluster."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class Cluster(models.TextChoices):
        DEFAULT = "default", _("Default (CPU)")
        GPU = "gpu", _("GPU")

    kind = models.CharField(max_length=100, help_text="The registered job kind, e.g. 'demo.countdown'.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    progress_message = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=default_max_attempts)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="A message for people; tracebacks go to the log.")
    payload = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    cluster = models.CharField(max_length=16, choices=Cluster.choices, default=Cluster.DEFAULT)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "generation_job"  # the table it had when the job system lived in generation/ (no data move)
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["studio", "state"], name="job_studio_state"),
            # The list's order with its tiebreaker (keyset pages: jobs.keyset); migration jobs 0002.
            models.Index(fields=["studio", "-created_at", "-id"], name="job_studio_created"),
            models.Index(fields=["studio", "kind"], name="job_studio_kind"),
            # The sweeper's cross-studio scan: only running jobs, by heartbeat.
            models.Index(fields=["heartbeat_at"], condition=Q(state="running"), name="job_running_heartbeat"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_lte_100"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="job_max_attempts_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.get_state_display()})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def can_cancel(self) -> bool:
        return self.state == self.State.QUEUED or (self.state == self.State.RUNNING and not self.cancel_requested)

    @property
    def can_retry(self) -> bool:
        return self.state in (self.State.FAILED, self.State.CANCELLED)

    @property
    def attempts_left(self) -> int:
        return max(self.max_attempts - self.attempts, 0)

    def can_transition(self, to: str) -> bool:
        return to in TRANSITIONS[self.State(self.state)]


TERMINAL_STATES = frozenset({Job.State.SUCCEEDED, Job.State.FAILED, Job.State.CANCELLED})

# Every allowed state change; services and the task check them (tests/jobs/test_state_machine.py).
TRANSITIONS: dict[Job.State, frozenset[Job.State]] = {
    Job.State.QUEUED: frozenset({Job.State.RUNNING, Job.State.CANCELLED, Job.State.FAILED}),
    Job.State.RUNNING: frozenset({Job.State.SUCCEEDED, Job.State.FAILED, Job.State.CANCELLED, Job.State.QUEUED}),
    Job.State.SUCCEEDED: frozenset(),
    Job.State.FAILED: frozenset({Job.State.QUEUED}),
    Job.State.CANCELLED: frozenset({Job.State.QUEUED}),
}
