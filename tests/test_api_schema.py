"""The studio API answers what its OpenAPI schema says: a bounded, seeded schemathesis run over every operation.

Issue 13, finding 9: a client generated from the schema must accept every answer the API gives. Schemathesis
generates requests for each operation of the served schema (positive and negative data, derandomized, a few
examples each) and checks every answer: never a 5xx, a documented status code, a documented content type, a body
that conforms to the documented schema (errors included: the one error format of studio_saas/api.py).

The requests come with studio A's API key; path ids name A's own objects (found), studio B's (404) or whatever
schemathesis generates. Each request runs in a savepoint that is rolled back, so every one sees the same world
(a DELETE or an erasure doesn't starve the operations after it) and no side effect (a job enqueued on commit, an
email) ever leaves it. No worker runs; Stripe is not configured, so billing's actions give their documented
refusal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tenants.context import tenant_context
from tenants.middleware import STUDIO_NOT_FOUND
from tenants.models import ApiKey
from tests.conftest import Tenant
from tests.factories import build_all, tenant_models

pytestmark = pytest.mark.django_db


def not_an_undocumented_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' not_a_server_error, except for a 5xx the operation documents on purpose (502: Stripe failed,
    503: Stripe is not configured; both with the error body). A 500 is never documented, so it always fails."""
    documented = case.operation.definition.raw.get("responses", {})
    if response.status_code != 500 and str(response.status_code) in documented:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    not_an_undocumented_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# A few examples per operation and mode: ~100 operations x 2 modes stay within a couple of minutes on 2 cores.
EXAMPLES_PER_OPERATION = 6
HYPOTHESIS = hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same cases on every run: a failure is reproducible, never flaky
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the report names the request as sent
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@pytest.fixture
def no_connection_closing() -> Iterator[None]:
    """Requests go through Django's WSGI handler (schemathesis' WSGI transport), whose request signals would close
    the test's database connection and so its transaction; Django's own test client disconnects them the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _model_for(param: str) -> type | None:
    """The tenant-owned model a path parameter `<model_name>_id` names (e.g. `photoset_id`)."""
    name = param.removesuffix("_id")
    return next((m for m in tenant_models() if m._meta.model_name == name), None)


def _fuzz(operation: Any, mode: GenerationMode, ids: st.SearchStrategy[dict[str, Any]], call: dict[str, Any]) -> None:
    """Run the operation's cases (one savepoint each, rolled back) and raise on the first failing check."""

    @HYPOTHESIS
    @given(case=operation.as_strategy(generation_mode=mode), ids=ids)
    def run(case: Any, ids: dict[str, Any]) -> None:
        if ids and case.path_parameters is not None:
            case.path_parameters.update(ids)
        with transaction.atomic():
            try:
                case.call_and_validate(**call)
            finally:
                transaction.set_rollback(True)

    run()


@dataclass
class ApiWorld:
    """Studios A and B with one row of every tenant-owned model each, A's API key, A's owner signed in (a session
    cookie: API keys may not read keys or invitations) and the schema that the API serves, loaded by schemathesis."""

    a: Tenant
    b: Tenant
    objects: dict[str, dict[type, Any]]
    as_key: dict[str, Any]  # call_and_validate's arguments for A's API key
    as_owner: dict[str, Any]  # for A's owner, signed in (a session cookie and the CSRF token unsafe methods need)
    schema: Any

    def operations(self) -> list[Any]:
        return [result.ok() for result in self.schema.get_all_operations()]

    def ids(self, operation: Any, key: str) -> dict[str, Any]:
        """The operation's path ids naming studio `key`'s objects, each the parent of the next (a photo set's
        client, a version's template), starting from the innermost one."""
        ids: dict[str, Any] = {}
        child = None
        for param in reversed(re.findall(r"{(\w+)}", operation.path)):
            model = _model_for(param)
            if model is None:
                raise LookupError(f"{operation.path}: name the path id `{param}` `<model>_id` after its model")
            parents = [] if child is None else [getattr(child, f.name) for f in child._meta.concrete_fields]
            obj = next((p for p in parents if isinstance(p, model)), None) or self.objects[key][model]
            ids[param], child = obj.pk, obj
        return ids

    def path_ids(self, operation: Any) -> st.SearchStrategy[dict[str, Any]]:
        """Studio A's own objects, studio B's (a 404) or whatever schemathesis generates (an empty dict)."""
        return st.sampled_from([self.ids(operation, "a"), self.ids(operation, "b"), {}])


@pytest.fixture
def api_world(
    two_tenants: tuple[Tenant, Tenant], settings: Any, tmp_path: Any, no_connection_closing: None
) -> ApiWorld:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private-media")},
        },
    }
    a, b = two_tenants
    objects = {"a": build_all(a), "b": build_all(b)}
    browser = Client()
    browser.force_login(a.owner)
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    session = {django_settings.SESSION_COOKIE_NAME: browser.cookies[django_settings.SESSION_COOKIE_NAME].value}
    csrf, csrf_cookie = "c" * 32, django_settings.CSRF_COOKIE_NAME  # a CSRF secret: cookie and header match
    call = {"base_url": f"http://localhost{a.prefix}", "checks": CHECKS}
    return ApiWorld(
        a=a,
        b=b,
        objects=objects,
        as_key={**call, "headers": {"Authorization": f"Api-Key {objects['a'][ApiKey].raw_key}"}},
        as_owner={**call, "headers": {"X-CSRFToken": csrf}, "cookies": {**session, csrf_cookie: csrf}},
        schema=schema,
    )


def test_every_operation_answers_as_its_schema_says(api_world: ApiWorld) -> None:
    """Issue 13, finding 9: schemathesis over every operation of the studio API (API key of studio A, A's and B's
    ids, positive and negative data) finds no 5xx, no undocumented status code, content type or header, and no
    body that breaks its documented schema."""
    operations = api_world.operations()
    assert len(operations) >= 98
    failures: list[str] = []
    for operation in operations:
        ids = api_world.path_ids(operation)
        call = api_world.as_key
        with transaction.atomic():
            probe = operation.Case(path_parameters=api_world.ids(operation, "a"))
            if probe.call(base_url=call["base_url"], headers=call["headers"]).status_code == 403:
                call = api_world.as_owner  # keys may not: what the operation does is fuzzed as the owner
            transaction.set_rollback(True)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, ids, call)
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # Nothing in the operation to make invalid (no parameters, no body): no negative cases.
            except (Exception, FailureGroup) as exc:  # every failure of every operation is reported below
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}):\n{exc}")
    assert not failures, f"{len(failures)} operations broke their schema:\n\n" + "\n\n".join(failures)


def test_every_read_of_real_objects_answers_its_documented_body(api_world: ApiWorld) -> None:
    """Issue 13, finding 9: every GET of the API, with studio A's own objects, answers 200 with a body that
    conforms to the schema (as A's owner; with A's API key too, or a documented 403 where keys may not read);
    with studio B's ids it answers the documented 404."""
    failures: list[str] = []
    reads = [operation for operation in api_world.operations() if operation.method.upper() == "GET"]
    assert len(reads) >= 40
    for operation in reads:
        label = f"GET {operation.path}"
        as_key, as_owner = api_world.as_key, api_world.as_owner
        attempts = [("owner", api_world.ids(operation, "a"), as_owner, {200})]
        attempts.append(("API key", api_world.ids(operation, "a"), as_key, {200, 403}))
        if "{" in operation.path:
            attempts.append(("API key, B's ids", api_world.ids(operation, "b"), as_key, {404}))
            attempts.append(("owner, B's ids", api_world.ids(operation, "b"), as_owner, {404}))
        for who, ids, call, expected in attempts:
            case = operation.Case(path_parameters=ids)
            try:
                with transaction.atomic():
                    response = case.call_and_validate(**call)
                    transaction.set_rollback(True)
            except (Exception, FailureGroup) as exc:
                failures.append(f"{label} ({who}):\n{exc}")
                continue
            if response.status_code not in expected:
                failures.append(f"{label} ({who}): {response.status_code}, expected {sorted(expected)}")
    assert not failures, f"{len(failures)} reads failed:\n\n" + "\n\n".join(failures)


# --- What the fuzzing found, one by one ------------------------------------------------------------------------


@pytest.fixture
def served_schema(client: Client) -> dict[str, Any]:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _property(schema: dict[str, Any], component: str, name: str) -> dict[str, Any]:
    return schema["components"]["schemas"][component]["properties"][name]


def test_fields_that_answer_null_or_blank_say_so(served_schema: dict[str, Any]) -> None:
    """Issue 13, finding 9: the fields schemathesis saw answer null (nobody recorded, no image, no version) or an
    empty email are nullable, or allow "", in the schema."""
    for component, name in [
        ("ConsentText", "created_by"),
        ("Template", "created_by"),
        ("Template", "cover_image"),
        ("TemplateVersion", "created_by"),
        ("TemplateVersion", "reference_image"),
        ("Portrait", "template_version"),
        ("Portrait", "thumbnail"),
        ("Portrait", "preview"),
        ("ApiKey", "created_by"),
        ("Invitation", "invited_by"),
    ]:
        assert _property(served_schema, component, name).get("nullable") is True, f"{component}.{name}"
    email = _property(served_schema, "Order", "email")
    assert {"type": "string", "maxLength": 0} in email["oneOf"] and {"type": "string", "format": "email"} in email[
        "oneOf"
    ]


def test_every_operation_documents_its_errors_in_the_one_error_format(served_schema: dict[str, Any]) -> None:
    """Issue 13, finding 9: every operation documents 401, 403 and 404 (writes 400, bodies 415) with the body of
    studio_saas/api.py's errors, the `Error` component; so do the errors a view declares itself (409, 502, 503)."""
    error = served_schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = served_schema["components"]["schemas"][error["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
    assert set(detail["required"]) == {"code", "message"} and "fields" in detail["properties"]
    for path, methods in served_schema["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            expected = {"401", "403", "404"} | ({"400"} if method in ("post", "put", "patch") else set())
            expected |= {"415"} if "requestBody" in operation else set()
            assert expected <= set(responses), f"{method.upper()} {path}: {sorted(responses)}"
            for code, response in responses.items():
                if int(code) >= 400:
                    body = response["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Error"}, f"{method.upper()} {path} {code}"
            assert "500" not in responses, f"{method.upper()} {path}: a 500 is a bug, never part of the API"
    refund = served_schema["paths"]["/api/orders/{order_id}/refund/"]["post"]["responses"]
    assert {"409", "502", "503"} <= set(refund)


def test_an_unknown_studio_answers_the_api_json_404(client: Client, tenant_a: Tenant) -> None:
    """Issue 13, finding 9: the schema documents a JSON 404 for an unknown studio: under /api/ it is one (a page
    elsewhere)."""
    response = client.get("/s/no-such-studio/api/clients/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == {"code": "not_found", "message": STUDIO_NOT_FOUND}
    page = client.get("/s/no-such-studio/clients/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_path_with_a_newline_stays_in_its_studio(client: Client, tenant_a: Tenant) -> None:
    """Issue 13, finding 9 (found by schemathesis): an id with an encoded newline in it is the studio API's JSON
    404, not the platform's HTML page."""
    response = client.get(f"{tenant_a.prefix}/api/galleries/1%0A2/order/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


def test_an_id_beyond_any_primary_key_is_a_clear_400(client: Client, tenant_a: Tenant) -> None:
    """Issue 13, finding 9 (found by schemathesis): an id larger than any row can have, in a body or a filter, is
    a 400 that says what an id is, not a 500 (SQLite can't bind it)."""
    from tenants.api_fields import ID_RULE
    from tests.galleries.factories import make_gallery

    client.force_login(tenant_a.owner)
    with tenant_context(tenant_a.studio):
        gallery = make_gallery(tenant_a)
    too_big = 2**64
    response = client.post(
        f"{tenant_a.prefix}/api/galleries/{gallery.pk}/portraits/", {"portraits": [too_big]}, "application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"portraits.0: {ID_RULE}"
    response = client.get(f"{tenant_a.prefix}/api/portraits/?double={too_big}")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": f"double: {ID_RULE}",
        "fields": {"double": ID_RULE},
    }


def test_erasing_a_client_with_orders_keeps_them_anonymised(client: Client, tenant_a: Tenant) -> None:
    """Issue 13, finding 9 (found by schemathesis): erasing a client whose gallery had an order was a 500 after
    photo files had been deleted (the order protected its gallery and portraits). Now the erasure goes through and
    the order stays as a financial record, anonymised: no gallery, no portrait, no email; amount and Stripe ids
    kept. The API lists it with a null gallery and client."""
    from billing.models import Order, OrderItem
    from clients.models import Client as StudioClient
    from tests.billing.factories import make_order_item

    client.force_login(tenant_a.owner)
    with tenant_context(tenant_a.studio):
        item = make_order_item(tenant_a)
        order = item.order
        Order.objects.filter(pk=order.pk).update(
            status=Order.Status.PAID, email="ada@example.com", payment_intent_id="pi_kept", created_by_session="h"
        )
        client_id = order.gallery.client_id
    response = client.post(f"{tenant_a.prefix}/api/clients/{client_id}/erase/")
    assert response.status_code == 200, response.content
    with tenant_context(tenant_a.studio):
        assert not StudioClient.objects.filter(pk=client_id).exists()
        kept = Order.objects.get(pk=order.pk)
        assert (kept.gallery_id, kept.email, kept.created_by_session) == (None, "", "")
        assert (kept.status, kept.amount, kept.payment_intent_id) == (Order.Status.PAID, order.amount, "pi_kept")
        assert OrderItem.objects.get(pk=item.pk).portrait_id is None
    listed = client.get(f"{tenant_a.prefix}/api/orders/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    row = next(r for r in rows if r["id"] == order.pk)
    assert [row[k] for k in ("gallery", "gallery_title", "client", "client_name", "email")] == [None] * 4 + [""]


def test_too_many_fields_in_a_body_is_the_api_json_400(client: Client, tenant_a: Tenant, settings: Any) -> None:
    """Issue 13, finding 9 (found by schemathesis): a form body with more fields than Django reads is the API's
    JSON 400 with a clear message, not Django's HTML "Bad Request (400)" page."""
    from tests.galleries.factories import make_gallery

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    client.force_login(tenant_a.owner)
    with tenant_context(tenant_a.studio):
        gallery = make_gallery(tenant_a)
    body = "&".join(f"portraits={n}" for n in range(1, 10))
    response = client.post(
        f"{tenant_a.prefix}/api/galleries/{gallery.pk}/portraits/", body, "application/x-www-form-urlencoded"
    )
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == {"code": "parse_error", "message": "Too many fields in the request: at most 5."}


def test_the_erase_page_erases_a_client_with_orders_and_the_orders_page_says_so(
    client: Client, tenant_a: Tenant
) -> None:
    """Issue 13, finding 9 (found by schemathesis, the same erasure on the page): erasing a client with an order
    from the client page goes through; the studio's orders page keeps the order, as an erased client's."""
    from clients.models import Client as StudioClient
    from tests.billing.factories import make_order

    client.force_login(tenant_a.owner)
    with tenant_context(tenant_a.studio):
        order = make_order(tenant_a)
        studio_client = order.gallery.client
    response = client.post(f"{tenant_a.prefix}/clients/{studio_client.pk}/delete/", {"confirm": studio_client.name})
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        assert not StudioClient.objects.filter(pk=studio_client.pk).exists()
    page = client.get(f"{tenant_a.prefix}/billing/orders/").content.decode()
    assert f'id="order-{order.pk}"' in page and "Erased client" in page
