"""Template samples (templates_app/samples.py, generation/samples.py): the newest portraits of a version's designer
previews show in the catalogue and the run form; a client's portraits never do, nor hidden or flagged ones; a
version without previews, and every starter, shows an honest placeholder."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import DigitalDouble, Portrait, RenderRun
from templates_app.models import Template, TemplateVersion
from templates_app.samples import samples_for
from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.generation.factories import make_double

pytestmark = pytest.mark.django_db


def _template(tenant: Tenant, name: str) -> TemplateVersion:
    template = Template.objects.create(name=name, created_by=tenant.owner, status=Template.Status.PUBLISHED)
    version = TemplateVersion.objects.create(
        template=template, number=1, prompt="portrait of {subject}", base_model="tiny-sd15", created_by=tenant.owner
    )
    template.current_version = version
    template.save(update_fields=["current_version"])
    return version


def _portraits(double: DigitalDouble, version: TemplateVersion, kind: str, count: int, **fields: Any) -> list[Portrait]:
    run = RenderRun.objects.create(double=double, images=count, kind=kind, created_by=None)
    return [
        Portrait.objects.create(
            double=double,
            run=run,
            template_version=version,
            thumbnail=f"portraits/{kind}-{version.pk}-{i}.jpg",
            recipe={},
            **fields,
        )
        for i in range(count)
    ]


def test_the_newest_preview_portraits_are_the_samples_in_one_query(client_a: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        sample_double = make_double(tenant_a)
        window, film, plain = (_template(tenant_a, name) for name in ("Window light", "Film look", "Plain"))
        old = _portraits(sample_double, window, RenderRun.Kind.PREVIEW, 2)
        new = _portraits(sample_double, window, RenderRun.Kind.PREVIEW, 3)
        _portraits(sample_double, film, RenderRun.Kind.CLIENT, 2)  # a client's portraits: never samples
        _portraits(sample_double, film, RenderRun.Kind.PREVIEW, 1, is_hidden=True)
        _portraits(sample_double, film, RenderRun.Kind.PREVIEW, 1, flags=["explicit"])
        with CaptureQueriesContext(connection) as queries:
            found = samples_for(None, [window, film, plain])  # type: ignore[arg-type]
    assert len([q for q in queries.captured_queries if "generation_portrait" in q["sql"]]) == 1
    assert [len(found[v.pk]) for v in (window, film, plain)] == [3, 0, 0]
    assert all("/media/" in sample.url for sample in found[window.pk])
    assert old and new

    html = client_a.get(f"{tenant_a.prefix}/templates/").content.decode()
    assert html.count('class="tpl-sample"') == 3
    assert html.count("No sample yet") == 2


def test_starters_show_an_honest_placeholder(client_a: Any, tenant_a: Tenant) -> None:
    html = client_a.get(f"{tenant_a.prefix}/templates/starters/").content.decode()
    assert "templates_app/sample-placeholder.svg" in html
    assert "a starter has no picture of anyone" in html


def test_the_run_form_shows_each_templates_samples(client_a: Any, tenant_a: Tenant) -> None:
    with tenant_context(tenant_a.studio):
        sample_double = make_double(tenant_a)
        client_double = make_double(tenant_a)
        version = _template(tenant_a, "Window light")
        _portraits(sample_double, version, RenderRun.Kind.PREVIEW, 2)
    html = client_a.get(f"{tenant_a.prefix}/runs/new/{client_double.pk}/").content.decode()
    assert html.count('class="tpl-sample"') == 2
