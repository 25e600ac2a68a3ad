"""The digital doubles API (issue 20, part 4: API parity for integrations): list with filters, detail as the
double's page shows it, training from a ready set, test renders and deleting, with the pages' refusals and
messages, roles (photographers read, API keys act), other studios' ids (404 in the URL, 400 in a body), the list's
query count, and the whole life of a double driven through the API alone with an API key (the real engine: tiny
model, CPU, real jobs)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.models import Photo, PhotoSet
from generation import crypto
from generation.models import DigitalDouble, Portrait
from jobs.models import Job
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.conftest import Tenant, add_member
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    ready_double,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]

RENDER = {"prompt": "studio portrait of {subject}", "images": 2, "seed": 7, "steps": 2, "scheduler": "euler_a"}


def _api(tenant: Tenant) -> str:
    return f"{tenant.prefix}/api/doubles"


def _post(client: Any, url: str, body: Any = None, **kwargs: Any) -> Any:
    return client.post(url, body or {}, content_type="application/json", **kwargs)


def _double_with_portraits(tenant: Tenant, portraits: int = 2) -> DigitalDouble:
    """A READY factory double (its own client and photo set) with a finished training job and portraits."""
    from tests.generation.factories import make_double
    from tests.jobs.factories import make_job

    with tenant_context(tenant.studio):
        double = make_double(tenant)
        job = make_job(tenant)
        Job.objects.filter(pk=job.pk).update(kind="double.train", state=Job.State.SUCCEEDED, progress=100)
        double.job = job
        double.metrics = {"steps": 4, "photos": 10, "best_step": 4, "seconds": 1.5, "scores": {"2": 40.0, "4": 60.0}}
        double.created_by = tenant.owner
        double.save(update_fields=["job", "metrics", "created_by"])
        for rank in range(1, portraits + 1):
            Portrait.objects.create(
                double=double,
                recipe={"recipe_version": 1, "seed": rank, "identity_weight": 1.0},
                rank=rank,
                likeness=80.0 - 20 * rank,
                is_pick=rank == 1,
                image="portraits/x.png",
                thumbnail="portraits/x.webp",
                preview="portraits/x.jpg",
            )
        return double


# --- reads ----------------------------------------------------------------------------------------------------


def test_list_filters_and_detail_show_what_the_page_shows(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    tenant_a, tenant_b = two_tenants
    double = _double_with_portraits(tenant_a)
    other = _double_with_portraits(tenant_a, portraits=0)
    with tenant_context(tenant_a.studio):
        DigitalDouble.objects.filter(pk=other.pk).update(status=DigitalDouble.Status.FAILED)
    theirs = _double_with_portraits(tenant_b, portraits=1)
    client.force_login(tenant_a.owner)
    api = _api(tenant_a)

    listing = client.get(f"{api}/").json()
    assert listing["count"] == 2 and [d["id"] for d in listing["results"]] == [other.pk, double.pk]
    row = listing["results"][1]
    assert row["client"] == {"id": double.client_id, "name": double.client.name}
    assert (row["status"], row["state"], row["status_label"]) == ("ready", "succeeded", "Ready")
    assert row["photo_set"] == double.photo_set_id and row["trigger_phrase"] == "ohwx person"
    assert row["base_model_info"]["name"] == "tiny-sd15" and row["base_model_info"]["commercial_use"] in (True, False)
    assert row["job"]["kind"] == "double.train" and row["job"]["state"] == "succeeded"
    assert row["created_by"] == tenant_a.owner.email
    assert "portraits" not in row  # the list is light: the detail carries the page's panels

    assert [d["id"] for d in client.get(f"{api}/?client={double.client_id}").json()["results"]] == [double.pk]
    assert [d["id"] for d in client.get(f"{api}/?status=failed").json()["results"]] == [other.pk]
    assert client.get(f"{api}/?client={theirs.client_id}").json()["count"] == 0
    bad = client.get(f"{api}/?status=done")
    assert bad.status_code == 400 and "queued, training, ready, failed" in bad.json()["error"]["message"]
    assert client.get(f"{api}/?client=x").status_code == 400

    detail = client.get(f"{api}/{double.pk}/").json()
    assert detail["metrics"]["best_step"] == 4 and detail["metrics"]["scores"] == {"2": 40.0, "4": 60.0}
    assert detail["likeness"]["count"] == 2 and detail["likeness"]["median"] == pytest.approx(50.0)
    assert detail["likeness"]["above_line"] == 1 and detail["picks_likeness"]["count"] == 1
    assert detail["latest_render"] is None and detail["runs"] == []
    assert [p["rank"] for p in detail["portraits"]] == [1, 2]
    assert detail["portraits"][0]["thumbnail"].startswith("http") and "/media/" in detail["portraits"][0]["preview"]

    # Another studio's double: 404 whatever the method; nothing of it is touched.
    assert client.get(f"{api}/{theirs.pk}/").status_code == 404
    assert client.delete(f"{api}/{theirs.pk}/").status_code == 404
    assert _post(client, f"{api}/{theirs.pk}/test-render/", RENDER).status_code == 404
    with tenant_context(tenant_b.studio):
        assert DigitalDouble.objects.filter(pk=theirs.pk).exists() and not Job.objects.filter(kind="runs.render_item")


def _count(client: Any, url: str, **kwargs: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, response.content
    return len(queries)


def test_the_list_makes_the_same_queries_for_one_double_or_many(
    client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    from tests.tenants.factories import make_api_key

    tenant_a, _ = two_tenants
    _double_with_portraits(tenant_a, portraits=1)
    with tenant_context(tenant_a.studio):
        key = make_api_key(tenant_a)
    headers = {"Authorization": f"Api-Key {key.raw_key}"}
    url = f"{_api(tenant_a)}/"
    client.get(url, headers=headers)  # warm caches
    one = _count(client, url, headers=headers)
    for _ in range(5):
        _double_with_portraits(tenant_a, portraits=2)
    many = _count(client, url, headers=headers)
    assert client.get(url, headers=headers).json()["count"] == 6
    assert one == many, f"{one} queries for 1 double, {many} for 6: a query per row crept in"
    # The detail too: the same for 1 portrait or 8.
    small, large = _double_with_portraits(tenant_a, portraits=1), _double_with_portraits(tenant_a, portraits=8)
    assert _count(client, f"{url}{small.pk}/", headers=headers) == _count(client, f"{url}{large.pk}/", headers=headers)


# --- refusals and roles ---------------------------------------------------------------------------------------


def test_training_refusals_keep_the_pages_messages_and_statuses(
    client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    from tests.clients.factories import make_photo_set

    tenant_a, tenant_b = two_tenants
    with tenant_context(tenant_a.studio):
        photo_set = make_photo_set(tenant_a)
        Photo.objects.filter(photo_set=photo_set).delete()
    with tenant_context(tenant_b.studio):
        theirs = make_photo_set(tenant_b)
    client.force_login(tenant_a.owner)
    api = f"{_api(tenant_a)}/"
    for body, status, text in (
        ({}, 400, "photo_set"),
        ({"photo_set": 2**64}, 400, "Use an id"),
        ({"photo_set": theirs.pk}, 400, "There is no such photo set in this studio."),
        ({"photo_set": photo_set.pk, "base_model": "nope"}, 400, "no base model"),
        ({"photo_set": photo_set.pk, "class_word": "robot"}, 400, "woman, man, person"),
        ({"photo_set": photo_set.pk}, 409, "A digital double needs at least 10 accepted photos; this set has 0."),
    ):
        response = _post(client, api, body)
        assert response.status_code == status, (body, response.content)
        assert text in response.json()["error"]["message"] or text in str(response.json()["error"].get("fields"))
    with tenant_context(tenant_a.studio):
        PhotoSet.objects.filter(pk=photo_set.pk).update(status=PhotoSet.Status.TRAINED)
    response = _post(client, api, {"photo_set": photo_set.pk})
    assert response.status_code == 409 and "already used" in response.json()["error"]["message"]
    with tenant_context(tenant_a.studio):
        assert not DigitalDouble.objects.exists() and not Job.objects.filter(kind="double.train").exists()
    with tenant_context(tenant_b.studio):
        assert not DigitalDouble.objects.exists()


def test_test_render_refusals_keep_the_pages_messages_and_statuses(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    double = ready_double(tenant_a, tiny_engine)
    client.force_login(tenant_a.owner)
    url = f"{_api(tenant_a)}/{double.pk}/test-render/"
    for body, text in (
        ({}, "Write a prompt."),
        ({"prompt": "no subject here"}, "Put {subject} in the prompt where the client should appear."),
        ({**RENDER, "steps": 0}, "Use between 1 and 100 steps."),
        ({**RENDER, "identity_weight": 3}, "The identity weight is between 0 and 2."),
        ({**RENDER, "images": 99}, "Render between 1 and"),
        ({**RENDER, "scheduler": "plms"}, "plms"),
    ):
        response = _post(client, url, body)
        assert response.status_code == 400, (body, response.content)
        assert text in response.json()["error"]["message"], response.json()
    with tenant_context(tenant_a.studio):
        DigitalDouble.objects.filter(pk=double.pk).update(status=DigitalDouble.Status.TRAINING)
    response = _post(client, url, RENDER)
    assert response.status_code == 409
    assert response.json()["error"]["message"] == "This digital double is not trained yet."
    with tenant_context(tenant_a.studio):
        assert not Job.objects.exists()


def test_photographers_read_but_do_not_act(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    from tests.clients.factories import make_photo_set

    tenant_a, tenant_b = two_tenants
    double = _double_with_portraits(tenant_a, portraits=1)
    theirs = _double_with_portraits(tenant_b, portraits=0)
    with tenant_context(tenant_a.studio):
        photo_set = make_photo_set(tenant_a)
    client.force_login(add_member(tenant_a, "photographer@studio-a.example", "photographer"))
    api = _api(tenant_a)
    assert client.get(f"{api}/").status_code == 200 and client.get(f"{api}/{double.pk}/").status_code == 200
    for response in (
        _post(client, f"{api}/", {"photo_set": photo_set.pk}),
        _post(client, f"{api}/{double.pk}/test-render/", RENDER),
        client.delete(f"{api}/{double.pk}/"),
    ):
        assert response.status_code == 403
        assert "owners, managers and staff can train, render and delete" in response.json()["error"]["message"]
    # ...and another studio's double stays a 404 for them too (never a 403 that confirms it exists).
    assert client.delete(f"{api}/{theirs.pk}/").status_code == 404
    assert _post(client, f"{api}/{theirs.pk}/test-render/", RENDER).status_code == 404
    with tenant_context(tenant_a.studio):
        assert DigitalDouble.objects.filter(pk=double.pk).exists()


def test_owners_managers_and_keys_choose_the_sample_doubles(client: Any, two_tenants: tuple[Tenant, Tenant]) -> None:
    """The double page's "use as a sample for template previews" (owners and managers), through the API."""
    from tests.tenants.factories import make_api_key

    tenant_a, tenant_b = two_tenants
    double = _double_with_portraits(tenant_a, portraits=0)
    theirs = _double_with_portraits(tenant_b, portraits=0)
    url = f"{_api(tenant_a)}/{double.pk}/sample/"
    client.force_login(tenant_a.owner)
    response = _post(client, url, {"is_sample": True})
    assert response.status_code == 200 and response.json()["is_test_subject"] is True
    assert _post(client, url, {}).status_code == 400  # is_sample is required
    assert _post(client, f"{_api(tenant_a)}/{theirs.pk}/sample/", {"is_sample": True}).status_code == 404
    client.force_login(add_member(tenant_a, "staff@studio-a.example", "staff"))
    refused = _post(client, url, {"is_sample": False})
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "Only the studio's owners and managers can choose its sample doubles."
    client.logout()
    with tenant_context(tenant_a.studio):
        key = make_api_key(tenant_a)
    headers = {"Authorization": f"Api-Key {key.raw_key}"}
    assert _post(client, url, {"is_sample": False}, headers=headers).json()["is_test_subject"] is False
    with tenant_context(tenant_a.studio):
        assert DigitalDouble.objects.get(pk=double.pk).is_test_subject is False
    with tenant_context(tenant_b.studio):
        assert DigitalDouble.objects.get(pk=theirs.pk).is_test_subject is False


def test_deleting_through_the_api_deletes_the_files_and_answers_the_counts(
    client: Any, two_tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_a, _ = two_tenants
    double = _double_with_portraits(tenant_a, portraits=1)
    with tenant_context(tenant_a.studio):
        portrait = Portrait.objects.get(double=double)
        portrait.image.save("p.png", ContentFile(b"\x89PNG\r\n\x1a\n" + b"0" * 10), save=True)
        double.lora_file.save("d.bin", ContentFile(crypto.encrypt(b"weights")), save=True)
    names = [portrait.image.name, double.lora_file.name]
    assert all(default_storage.exists(n) for n in names)
    client.force_login(tenant_a.owner)
    response = client.delete(f"{_api(tenant_a)}/{double.pk}/")
    assert response.status_code == 200, response.content
    assert response.json() == {"doubles": 1, "portraits": 1, "files": 4, "group_portraits": 0, "checkpoint_files": 0}
    assert not any(default_storage.exists(n) for n in names)
    with tenant_context(tenant_a.studio):
        assert not DigitalDouble.objects.filter(pk=double.pk).exists() and not Portrait.objects.exists()
    assert client.get(f"{_api(tenant_a)}/{double.pk}/").status_code == 404


# --- the whole life of a double, through the API alone ---------------------------------------------------------


def test_train_status_test_render_and_delete_through_the_api_with_an_api_key(
    client: Any, two_tenants: tuple[Tenant, Tenant], settings: Any
) -> None:
    """An integration with an API key: trains a double from a validated set (the real training job, tiny model),
    follows its status, test-renders it (the real render job), fetches a portrait through its signed link, and
    deletes the double with its files."""
    from tests.generation.test_doubles import _ten_photos, _validated_set
    from tests.tenants.factories import make_api_key

    settings.ENGINE_TRAIN_STEPS = 4
    tenant_a, _ = two_tenants
    photo_set = _validated_set(tenant_a, _ten_photos())
    with tenant_context(tenant_a.studio):
        key = make_api_key(tenant_a)
    headers = {"Authorization": f"Api-Key {key.raw_key}"}
    api = _api(tenant_a)

    response = _post(client, f"{api}/", {"photo_set": photo_set.pk, "class_word": "woman"}, headers=headers)
    assert response.status_code == 202, response.content
    body = response.json()
    double_id, job = body["double"]["id"], body["job"]
    assert (job["kind"], job["state"]) == ("double.train", "queued")
    assert (body["double"]["status"], body["double"]["class_word"]) == ("queued", "woman")
    again = _post(client, f"{api}/", {"photo_set": photo_set.pk}, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "A digital double is already being trained from this photo set."
    assert client.get(f"{api}/?status=queued", headers=headers).json()["count"] == 1

    assert run_job(job["id"], tenant_a.studio.pk) == "succeeded"
    detail = client.get(f"{api}/{double_id}/", headers=headers).json()
    assert (detail["status"], detail["state"], detail["job"]["state"]) == ("ready", "succeeded", "succeeded")
    assert detail["metrics"]["steps"] == 4 and detail["trained_at"] and detail["portraits"] == []

    response = _post(client, f"{api}/{double_id}/test-render/", RENDER, headers=headers)
    assert response.status_code == 202, response.content
    render_job = response.json()["job"]
    assert render_job["kind"] == "runs.render_item" and render_job["state"] == "queued"
    assert client.get(f"{api}/{double_id}/", headers=headers).json()["latest_render"]["id"] == render_job["id"]
    assert run_job(render_job["id"], tenant_a.studio.pk) == "succeeded"

    detail = client.get(f"{api}/{double_id}/", headers=headers).json()
    assert len(detail["portraits"]) == 2 and detail["likeness"]["count"] == 2
    assert detail["latest_render"]["state"] == "succeeded"
    assert detail["runs"] == []  # like the page: its runs list shows client runs and previews, not test renders
    link = detail["portraits"][0]["thumbnail"]
    assert client.get(link, headers=headers).status_code == 200
    with tenant_context(tenant_a.studio):
        files = [p.image.name for p in Portrait.objects.filter(double_id=double_id)]
        files.append(DigitalDouble.objects.get(pk=double_id).lora_file.name)
    assert all(default_storage.exists(name) for name in files)

    response = client.delete(f"{api}/{double_id}/", headers=headers)
    assert response.status_code == 200, response.content
    assert response.json()["doubles"] == 1 and response.json()["portraits"] == 2
    assert not any(default_storage.exists(name) for name in files)
    assert client.get(f"{api}/{double_id}/", headers=headers).status_code == 404
    assert client.get(link, headers=headers).status_code == 404
