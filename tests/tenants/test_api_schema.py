"""The OpenAPI schema of the studio API (served on the platform) and its documentation pages."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema
from rest_framework.views import APIView

from tests.test_isolation import studio_routes

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    GENERATOR_STATS.reset()
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_schema_documents_every_api_endpoint_of_the_studio_urlconf(schema):
    """Every DRF view under /api/ inside a studio (jobs included, whoever adds them) is in the schema."""
    expected = set()
    for route in studio_routes():
        view_class = getattr(route.pattern.callback, "cls", None)
        if not (route.is_api and isinstance(view_class, type) and issubclass(view_class, APIView)):
            continue
        if "format" in route.kwargs:
            continue  # DRF's ".json" suffix variants
        if route.name in ("studio-api-schema", "studio-api-docs"):
            continue  # the documentation itself, inside a studio
        expected.add("/" + re.sub(r"%\((\w+)\)s", r"{\1}", route.template))
    assert {"/api/studio/", "/api/members/{membership_id}/", "/api/api-keys/{apikey_id}/"} <= expected
    assert expected <= set(schema["paths"])


def test_the_jobs_api_is_in_the_schema(schema):
    assert "/api/jobs/" in schema["paths"]
    assert "/api/jobs/{job_id}/" in schema["paths"]


def test_schema_documents_api_key_auth_and_path_ids(schema):
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Api-Key sk_<prefix>_<secret>`: a key created by a studio owner or manager.",
    }
    operation = schema["paths"]["/api/api-keys/{apikey_id}/"]["get"]
    assert {"ApiKeyAuth": []} in operation["security"]
    (param,) = [p for p in operation["parameters"] if p["in"] == "path"]
    assert param["name"] == "apikey_id" and param["schema"]["type"] == "integer"
    created = schema["paths"]["/api/api-keys/"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/ApiKeyCreated")


def test_tenants_api_views_generate_without_warnings(client):
    GENERATOR_STATS.reset()
    client.get("/api/schema/?format=json")
    problems = [msg for msg in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache] if "tenants" in msg]
    assert problems == []


def _docs(client, url: str) -> str:
    """The docs page and its init script (drf-spectacular's split view: a file of its own, `?script=`, for the
    Content-Security-Policy), as one text."""
    page = client.get(url)
    assert page.status_code == 200
    script = client.get(f"{url}?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    return page.content.decode() + script.content.decode()


def test_docs_page_loads_its_assets_locally(client):
    html = _docs(client, "/api/docs/")
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert "/api/schema/" in html


def test_schema_points_try_it_out_at_a_studio(schema):
    (server,) = schema["servers"]
    assert server["url"] == "/s/{studio}"


def test_a_studio_serves_the_same_docs_and_schema(client, tenant_a, schema):
    """An integrator following the README opens /s/<slug>/api/docs/: the docs are there too (no login), and
    their schema is the studio's own address."""
    html = _docs(client, f"{tenant_a.prefix}/api/docs/")
    assert "/static/drf_spectacular_sidecar/" in html and "https://" not in html
    assert f"{tenant_a.prefix}/api/schema/" in html.replace("\\u002D", "-")  # (JSON-escaped in the page)
    in_studio = client.get(f"{tenant_a.prefix}/api/schema/?format=json")
    assert in_studio.status_code == 200
    assert in_studio.json()["paths"] == schema["paths"]


def test_favicon_at_the_root_of_the_platform_and_of_a_studio(client, tenant_a):
    for url in ("/favicon.ico", f"{tenant_a.prefix}/favicon.ico"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/static/") and response["Location"].endswith(".ico")
