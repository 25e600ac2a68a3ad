"""Built-in job kinds of the job system.

DIAGNOSTIC ONLY: `demo.countdown` does no real work. It proves that the queue, the workers, progress reporting
and cancellation work end to end (the "Start a test job" button on the jobs page, the tests and the demo).
"""

from __future__ import annotations

import time
from typing import Any

from django.utils.translation import gettext as _

from jobs.registry import JobContext, JobError, job_handler

DEMO_KIND = "demo.countdown"
DEMO_MAX_STEPS = 100
DEMO_MAX_DELAY_SECONDS = 5.0


def validate_demo_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The countdown's payload with defaults, or JobError with a message for people."""
    payload = dict(payload or {})
    try:
        steps = int(payload.get("steps", 5))
        delay = float(payload.get("delay", 0.5))
    except (TypeError, ValueError):
        raise JobError(_("The test job needs a whole number of steps and a delay in seconds.")) from None
    if not 1 <= steps <= DEMO_MAX_STEPS:
        raise JobError(_("The test job counts between 1 and %(max)s steps.") % {"max": DEMO_MAX_STEPS})
    if not 0 <= delay <= DEMO_MAX_DELAY_SECONDS:
        raise JobError(
            _("The test job waits between 0 and %(max)s seconds per step.") % {"max": f"{DEMO_MAX_DELAY_SECONDS:g}"}
        )
    return {"steps": steps, "delay": delay}


@job_handler(DEMO_KIND, cluster="default", description="Diagnostic: counts down with progress; does no work.")
def countdown(ctx: JobContext) -> dict[str, Any]:
    """Diagnostic job: counts `steps` steps, sleeping `delay` seconds before each, reporting progress and
    stopping at the next step when cancelled."""
    params = validate_demo_payload(ctx.payload)
    steps, delay = params["steps"], params["delay"]
    ctx.progress(0, f"Counting down from {steps}")
    for done in range(1, steps + 1):
        ctx.check_cancelled()
        if delay:
            time.sleep(delay)
        ctx.progress(done * 100 / steps, f"{steps - done} to go" if done < steps else "Lift-off")
    return {"steps": steps}
