"""Reads of doubles and runs for the studio's dashboard (generation/dashboard.py; galleries reads the finished runs
too). Keyword-only, in the current tenant context, each one query whatever the studio's size; the pages' own reads
stay beside their services (generation/doubles.py, generation/runs.py)."""

from __future__ import annotations

from django.db.models import DateTimeField, Exists, Max, OuterRef, Q, QuerySet, Subquery

from clients.models import PhotoSet
from clients.selectors import sets_ready_to_train
from generation.models import DigitalDouble, RenderRun, RenderRunItem
from jobs.models import Job

ACTIVE_STATES = (Job.State.QUEUED, Job.State.RUNNING)


def sets_ready_for_review() -> QuerySet[PhotoSet]:
    """Open photo sets that can train and from which no digital double was started yet (a failed one is counted
    among the failed doubles instead), with their client and `accepted_count`."""
    return sets_ready_to_train().exclude(Exists(DigitalDouble.objects.filter(photo_set=OuterRef("pk"))))


def failed_doubles() -> QuerySet[DigitalDouble]:
    """Doubles whose training failed, as their page shows it (the training job failed; or, without a job, the
    double did; a cancelled training is not a failure), that no newer double of the client replaced (one that
    is not failed), with their client and job. Read from the index double_studio_status: doubles not ready."""
    newer = DigitalDouble.objects.filter(client=OuterRef("client"), created_at__gt=OuterRef("created_at")).exclude(
        status=DigitalDouble.Status.FAILED
    )
    not_ready = [DigitalDouble.Status.QUEUED, DigitalDouble.Status.TRAINING, DigitalDouble.Status.FAILED]
    return (
        DigitalDouble.objects.filter(status__in=not_ready)
        .filter(Q(job__state=Job.State.FAILED) | Q(job__isnull=True, status=DigitalDouble.Status.FAILED))
        .exclude(Exists(newer))
        .select_related("client", "job")
        .only("id", "created_at", "client__name", "job__finished_at")
    )


def recent_ready_doubles(*, limit: int) -> list[DigitalDouble]:
    """The doubles trained last (ready), with their client's name, newest first: the index double_studio_trained."""
    return list(
        DigitalDouble.objects.filter(status=DigitalDouble.Status.READY, trained_at__isnull=False)
        .select_related("client")
        .only("id", "trained_at", "client__name")
        .order_by("-trained_at", "-id")[:limit]
    )


def finished_runs() -> QuerySet[RenderRun]:
    """Client runs that have ended with portraits: no item's job queued or running, one at least succeeded (the
    run is "done" or "partly failed"), with what names them (their group's or their client's name)."""
    items = RenderRunItem.objects.filter(run=OuterRef("pk"))
    return (
        RenderRun.objects.filter(kind=RenderRun.Kind.CLIENT)
        .filter(Exists(items.filter(job__state=Job.State.SUCCEEDED)))
        .exclude(Exists(items.filter(job__state__in=ACTIVE_STATES)))
        .select_related("double__client", "group")
        .only("id", "created_at", "group_id", "group__name", "double__client__name")
    )


def recent_finished_runs(*, limit: int) -> list[RenderRun]:
    """The latest `limit` runs (by start, from the index renderrun_studio_created) that have finished, each with
    `finished_at`: when its last job ended."""
    last_end = (
        RenderRunItem.objects.filter(run=OuterRef("pk"))
        .order_by()
        .values("run")
        .annotate(at=Max("job__finished_at"))
        .values("at")[:1]
    )
    return list(
        finished_runs()
        .annotate(finished_at=Subquery(last_end, output_field=DateTimeField()))
        .order_by("-created_at", "-id")[:limit]
    )
