"""`manage.py workers`: the task workers of this site that are alive now, as their own beacons say (jobs/workers.py):
busy with which job or idle, and the base models each gpu worker has loaded (what model affinity routes by)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.models import Job
from jobs.workers import START_COMMANDS, live_workers


class Command(BaseCommand):
    help = "List the live task and GPU workers of this site: busy or idle, and the base models each has loaded."

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        for cluster in Job.Cluster.values:
            found = live_workers(cluster)
            label = Job.Cluster(cluster).label
            self.stdout.write(f"{label}: {len(found)} worker{'s' if len(found) != 1 else ''} alive")
            if not found:
                self.stdout.write(f"  none; start one with: {START_COMMANDS[cluster]}")
            for worker in found:
                since = f" for {int((now - worker.since).total_seconds())} s" if worker.since else ""
                state = f"busy with job {worker.job_id}{since}" if worker.busy else f"idle{since}"
                line = f"  {worker.worker}  {state}, last beat {int((now - worker.at).total_seconds())} s ago"
                if cluster == Job.Cluster.GPU:
                    models = ", ".join(worker.loaded) or "none"
                    line += f"; models loaded: {models} ({worker.loads} cold load{'s' if worker.loads != 1 else ''})"
                self.stdout.write(line)
