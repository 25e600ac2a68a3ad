"""The template list costs the same number of queries for 1 template and for 10 (rows carry their current
version and style LoRA through select_related; covers are signed links, no query)."""

from __future__ import annotations

from typing import Any

import pytest

from templates_app import versions
from tenants.context import tenant_context
from tests.conftest import Tenant, expected_queries
from tests.templates_app.conftest import image_upload

pytestmark = pytest.mark.django_db

# The tenant middleware's studio lookup, the request's savepoint and its SET LOCAL of the studio (and the reset
# before it), the session, the user and their membership; then the page itself: the count (paginator) and the
# rows with their current versions, style LoRAs and authors in one query; the price sheet's currency (prices).
# The SET LOCAL and its reset run on PostgreSQL only (see expected_queries).
LIST_QUERIES = expected_queries(postgresql=12, sqlite=10)  # + the samples: one window query (generation/samples.py)
API_LIST_QUERIES = expected_queries(postgresql=10, sqlite=8)


def fill(tenant: Tenant, make_template: Any, style_lora: Any, count: int) -> None:
    lora = style_lora()
    for i in range(count):
        template = make_template(f"Template {i:02d}", style_lora=lora.pk if i % 2 else "")
        with tenant_context(tenant.studio):
            versions.save_template(template=template, cover=image_upload(f"cover{i}.png"))
            if i % 3 == 0:
                versions.publish(template=template)


@pytest.mark.parametrize("count", [1, 10])
def test_the_template_list_page_has_a_fixed_number_of_queries(
    client_a: Any, tenant_a: Tenant, make_template, style_lora, django_assert_num_queries, count: int
):
    fill(tenant_a, make_template, style_lora, count)
    url = f"{tenant_a.prefix}/templates/"
    with django_assert_num_queries(LIST_QUERIES):
        response = client_a.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('<tr id="template-') == count
    with django_assert_num_queries(LIST_QUERIES):
        assert client_a.get(url, {"category": "business"}).status_code == 200


@pytest.mark.parametrize("count", [1, 10])
def test_the_template_list_api_has_a_fixed_number_of_queries(
    client_a: Any, tenant_a: Tenant, make_template, style_lora, django_assert_num_queries, count: int
):
    fill(tenant_a, make_template, style_lora, count)
    with django_assert_num_queries(API_LIST_QUERIES):
        response = client_a.get(f"{tenant_a.prefix}/api/templates/")
    assert response.status_code == 200
    assert response.json()["count"] == count
