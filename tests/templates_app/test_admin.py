"""Templates in the studio back office: versions shown inline and read-only, style LoRAs read-only, owners may
rename a template; another studio's template is a 404."""

from __future__ import annotations

from typing import Any

import pytest

from tenants.context import tenant_context
from tests.conftest import Tenant
from tests.templates_app.conftest import reload

pytestmark = pytest.mark.django_db


def admin_url(tenant: Tenant, path: str = "") -> str:
    return f"{tenant.prefix}/admin/{path}"


def test_the_template_page_shows_its_versions_read_only(client_a: Any, tenant_a: Tenant, make_template):
    from templates_app import versions

    template = make_template()
    with tenant_context(tenant_a.studio):
        versions.save_template(template=template, settings={"steps": 41}, note="Sharper")
    response = client_a.get(admin_url(tenant_a, f"templates_app/template/{template.pk}/change/"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sharper" in html and "41" in html
    assert 'name="versions-0-prompt"' not in html  # shown, not editable
    assert client_a.get(admin_url(tenant_a, "templates_app/template/add/")).status_code == 403
    response = client_a.post(
        admin_url(tenant_a, f"templates_app/template/{template.pk}/change/"),
        {
            "name": "Renamed in the admin",
            "category": "classic",
            "description": "",
            "versions-TOTAL_FORMS": "2",
            "versions-INITIAL_FORMS": "2",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    template = reload(tenant_a, template)
    assert template.name == "Renamed in the admin" and template.current_version.number == 2


def test_style_loras_are_read_only(client_a: Any, tenant_a: Tenant, style_lora):
    lora = style_lora()
    assert client_a.get(admin_url(tenant_a, "templates_app/stylelora/")).status_code == 200
    response = client_a.get(admin_url(tenant_a, f"templates_app/stylelora/{lora.pk}/change/"))
    assert response.status_code == 200 and lora.sha256 in response.content.decode()
    assert client_a.post(admin_url(tenant_a, f"templates_app/stylelora/{lora.pk}/change/"), {}).status_code == 403


def test_another_studios_template_is_404_in_the_admin(client_a: Any, tenant_a: Tenant, tenant_b: Tenant, make_template):
    theirs = make_template("Theirs", tenant=tenant_b)
    assert client_a.get(admin_url(tenant_a, f"templates_app/template/{theirs.pk}/change/")).status_code == 404
