"""The sample images of template versions (templates_app/samples.py): the newest portraits of each version's
designer previews, rendered on the studio's sample doubles. One query for any number of versions (a window
over the previews' portraits), signed thumbnail links (no query). Hidden portraits and ones the safety check
withheld or flagged are never samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest

from generation.models import Portrait, RenderRun
from templates_app.samples import SAMPLES_PER_VERSION, Sample, register_sample_provider
from tenants.media import signed_media_url


def preview_samples(request: HttpRequest, versions: Sequence[Any]) -> dict[int, list[Sample]]:
    ids = [version.pk for version in versions]
    rows = (
        Portrait.objects.filter(
            template_version_id__in=ids, run__kind=RenderRun.Kind.PREVIEW, is_hidden=False, flags=[]
        )
        .exclude(thumbnail="")
        .annotate(
            row=Window(
                RowNumber(), partition_by=[F("template_version_id")], order_by=[F("created_at").desc(), F("id").desc()]
            )
        )
        .filter(row__lte=SAMPLES_PER_VERSION)
        .only("id", "thumbnail", "template_version_id", "studio_id")
        .order_by("template_version_id", "row")
    )
    found: dict[int, list[Sample]] = {}
    for portrait in rows:
        found.setdefault(portrait.template_version_id, []).append(
            Sample(
                url=signed_media_url(obj=portrait, field="thumbnail", request=request),
                alt="A sample of this template, rendered on the studio's sample double",
            )
        )
    return found


def register() -> None:
    """Called from GenerationConfig.ready()."""
    register_sample_provider("generation.previews", preview_samples)
