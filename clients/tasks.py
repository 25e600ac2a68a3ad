"""Scheduled platform tasks of the intake (django-q2, default cluster).

`sweep_retention()` runs every hour (a Schedule created after migrate, clients/apps.py): photo sets still
collecting whose `retention_until` has passed have their originals and face crops deleted from storage, with a
deletion receipt of kind "retention". Platform work: the sets are found across studios, each purge runs in its
own studio's tenant context and transaction, so one failure doesn't stop the others.
"""

from __future__ import annotations

import structlog
from django.utils import timezone

from clients.models import DeletionReceipt, PhotoSet
from clients.services import purge_photo_set_files
from tenants.context import platform_context, tenant_context
from tenants.models import Studio

log = structlog.get_logger("clients.tasks")

RETENTION_BATCH = 200


def sweep_retention() -> dict[str, int]:
    now = timezone.now()
    with platform_context():
        due = list(
            PhotoSet.objects.filter(status=PhotoSet.Status.COLLECTING, retention_until__lte=now)
            .order_by("retention_until")
            .values_list("pk", "studio_id")[:RETENTION_BATCH]
        )
    studios = {s.pk: s for s in Studio.objects.filter(pk__in={studio_id for _, studio_id in due})}
    purged = failed = 0
    for photo_set_id, studio_id in due:
        studio = studios.get(studio_id)
        if studio is None:
            continue
        with tenant_context(studio):
            try:
                photo_set = PhotoSet.objects.filter(
                    pk=photo_set_id, status=PhotoSet.Status.COLLECTING, retention_until__lte=now
                ).first()
                if photo_set is None:
                    continue
                purge_photo_set_files(photo_set=photo_set, kind=DeletionReceipt.Kind.RETENTION)
                purged += 1
            except Exception:
                failed += 1
                log.exception("retention_purge_failed", photo_set_id=photo_set_id, studio_id=studio_id)
    if purged or failed:
        log.info("retention_swept", purged=purged, failed=failed)
    return {"purged": purged, "failed": failed}
