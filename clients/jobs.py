"""Job kinds of the intake: `intake.validate_set` (default cluster). The retention sweep is a scheduled
platform task (clients.tasks.sweep_retention), not a per-studio job."""

from __future__ import annotations

from typing import Any

from clients.models import PhotoSet
from clients.services import VALIDATE_SET_KIND
from clients.validation import validate_photo_set
from jobs.registry import JobContext, JobError, job_handler


@job_handler(VALIDATE_SET_KIND, cluster="default", description="Checks the new photos of a photo set.")
def validate_set(ctx: JobContext) -> dict[str, Any]:
    """Validate the PENDING photos of the set named in the payload (progress per photo, cancellable between
    photos), then the set-level checks (same person, near-duplicates)."""
    try:
        photo_set_id = int(ctx.payload.get("photo_set_id"))
    except (TypeError, ValueError):
        raise JobError("This validation job names no photo set.") from None
    photo_set = PhotoSet.objects.filter(pk=photo_set_id).first()
    if photo_set is None:
        raise JobError("The photo set no longer exists.")
    if photo_set.status != PhotoSet.Status.COLLECTING:
        return {"checked": 0, "skipped": "The photo set is closed: its photos were deleted."}
    ctx.progress(0, "Checking the photos")
    return validate_photo_set(photo_set=photo_set, progress=ctx.progress, check_cancelled=ctx.check_cancelled)
