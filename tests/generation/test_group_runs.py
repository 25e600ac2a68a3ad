"""Group runs (issue 17) on PostgreSQL with the real engine (tiny model, CPU, 2 steps, 64 px): a group of two
clients with ready doubles of different identity LoRAs, a two-slot template, the run through the job runner; each
face regenerated with its own person's LoRA and no other; scores per face; the refusals; erasure withdrawing the
group's portraits; the group's gallery; the pages and the API."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from clients import groups as client_groups
from clients import services as client_services
from clients.models import Client, ClientGroup, DeletionReceipt
from galleries import services as gallery_services
from galleries.models import Gallery, GalleryPortrait
from generation import crypto, groups, runs
from generation.models import DigitalDouble, Portrait, PortraitSubject, RenderRun, RunSubject
from jobs.models import Job
from tenants.context import tenant_context
from tests.conftest import Tenant, add_member
from tests.generation.runs_support import (  # noqa: F401  (fixtures)
    job_of,
    make_template,
    ready_double,
    reload,
    run_jobs,
    run_settings_fixture,
    tiny_engine_fixture,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]

COUPLE_PROMPT = "studio portrait of {subject_1} and {subject_2}, soft light"


def _consent(tenant: Tenant, client: Client) -> Client:
    with tenant_context(tenant.studio):
        return client_services.record_consent(
            client=client,
            consent_text=client_services.current_consent_text(),
            method=Client.ConsentMethod.STAFF,
            ip="127.0.0.1",
            collected_by=tenant.owner,
        )


def _person(tenant: Tenant, tiny_engine: dict[str, Any], name: str, lora: bytes) -> DigitalDouble:
    """A client with consent on record and a READY double whose identity LoRA is `lora`."""
    double = ready_double(tenant, tiny_engine, name=name)
    with tenant_context(tenant.studio):
        _consent(tenant, double.client)
        double.lora_file.save("double.bin", ContentFile(crypto.encrypt(lora)), save=False)
        double.save(update_fields=["lora_file"])
        return DigitalDouble.objects.select_related("client").get(pk=double.pk)


def _couple(tenant: Tenant, tiny_engine: dict[str, Any]) -> tuple[ClientGroup, DigitalDouble, DigitalDouble]:
    """Anna (the tests' identity LoRA) and Marc (another real LoRA: the style one) in a group, Anna first."""
    anna = _person(tenant, tiny_engine, "Anna Martin", tiny_engine["identity"])
    marc = _person(tenant, tiny_engine, "Marc Martin", tiny_engine["style"])
    with tenant_context(tenant.studio):
        group = client_groups.create_group(
            name="The Martins", clients=[anna.client, marc.client], created_by=tenant.owner
        )
    return group, anna, marc


def _couple_template(tenant: Tenant, **fields: Any) -> Any:
    template, _ = make_template(
        tenant,
        "Couple, studio light",
        prompt=COUPLE_PROMPT,
        subject_slots=2,
        slot_boxes=[[0.0, 0.1, 0.5, 0.9], [0.5, 0.1, 1.0, 0.9]],
        long_side=0,
        **fields,
    )
    return template


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_each_face_of_a_group_portrait_is_rendered_with_its_own_persons_lora_and_no_other(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    group, anna, marc = _couple(tenant_a, tiny_engine)
    template = _couple_template(tenant_a)
    with tenant_context(tenant_a.studio):
        run = groups.start_group_run(group=group, items=[(template, 2)], user=tenant_a.owner)
        assert run.group_id == group.pk and run.double_id == anna.pk
        assert [(s.slot, s.double_id) for s in RunSubject.objects.filter(run=run).order_by("slot")] == [
            (1, anna.pk),
            (2, marc.pk),
        ]
        job = run.items.get().job
        assert job.payload["people"] == 2
    assert run_jobs(tenant_a, run) == ["succeeded"]
    with tenant_context(tenant_a.studio):
        made = list(Portrait.objects.filter(run=run).order_by("rank"))
        assert len(made) == 2 and all(p.group_id == group.pk for p in made)
        assert sorted(p.rank for p in made) == [1, 2] and sum(p.is_pick for p in made) == 2
        for portrait in made:
            recipe = portrait.recipe
            # Who is where: each slot's person, their LoRA's digest and their face box.
            assert [(s["slot"], s["identity_sha256"]) for s in recipe["subjects"]] == [
                (1, _sha(tiny_engine["identity"])),
                (2, _sha(tiny_engine["style"])),
            ]
            # The scene had no identity at all; each face pass loaded exactly one identity adapter, its own.
            base = recipe["stages"][0]
            assert base["name"] == "base" and base["identity"] is None
            face_pass = next(stage for stage in recipe["stages"] if stage["name"] == "face_pass")
            assert [(f["slot"], f["identity_sha256"], f["adapters"]) for f in face_pass["per_face"]] == [
                (1, _sha(tiny_engine["identity"]), ["identity"]),
                (2, _sha(tiny_engine["style"]), ["identity"]),
            ]
            # The demo model draws no faces: the slots' boxes placed them (64 px: left and right halves).
            assert [f["face"][0] < 32 for f in face_pass["per_face"]] == [True, False]
            assert face_pass["faces_placed"].startswith("slots")
            faces = list(PortraitSubject.objects.filter(portrait=portrait).order_by("slot"))
            assert [(f.slot, f.double_id) for f in faces] == [(1, anna.pk), (2, marc.pk)]
            assert all(len(f.face) == 4 for f in faces)
            for field in (portrait.image, portrait.thumbnail, portrait.preview):
                assert default_storage.exists(field.name)
    finished = job_of(tenant_a, job.pk)
    assert finished.result["people"] == 2 and finished.result["images"] == 2


def test_group_runs_refuse_what_cannot_be_rendered_and_create_nothing(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    group, anna, marc = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    single, _ = make_template(tenant_a, "Headshot")
    trio, _ = make_template(
        tenant_a, "Trio", prompt="{subject_1}, {subject_2} and {subject_3} laughing", subject_slots=3
    )
    with tenant_context(tenant_a.studio):
        cases = [
            ([(single, 1)], 400, "portrays one person"),
            ([(trio, 1)], 400, "portrays 3 people and this group has 2"),
            ([], 400, "Pick at least one group template"),
            ([(couple, 1), (couple, 2)], 400, "listed twice"),
            ([(couple, 99)], 400, "between 1 and 32"),
        ]
        for items, status, words in cases:
            with pytest.raises(runs.RunError) as refused:
                groups.start_group_run(group=group, items=items, user=tenant_a.owner)
            assert refused.value.status == status and words in refused.value.message, refused.value.message
        # A group template is never run for one person.
        with pytest.raises(runs.RunError) as refused:
            runs.start_run(double=anna, items=[(couple, 1)], user=tenant_a.owner)
        assert "portrays 2 people: run it for a group" in refused.value.message
        # Someone without a ready double: the run says who.
        DigitalDouble.objects.filter(pk=marc.pk).update(status=DigitalDouble.Status.TRAINING)
        with pytest.raises(runs.RunError) as refused:
            groups.start_group_run(group=group, items=[(couple, 1)], user=tenant_a.owner)
        assert refused.value.status == 409 and "Marc Martin has no trained digital double" in refused.value.message
        assert not RenderRun.objects.exists() and not Job.objects.exists() and not RunSubject.objects.exists()


def test_a_group_run_estimate_adds_a_face_pass_per_extra_person(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    settings.ENGINE_SECONDS_PER_STEP = {"tiny": 0.1}
    group, anna, _ = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    with tenant_context(tenant_a.studio):
        version = couple.current_version
        single = runs.estimate(double=anna, items=[(version, 2)]).items[0].seconds
        both = groups.estimate_group(subjects=groups.ready_subjects(group), items=[(version, 2)]).items[0].seconds
        # 2 images x 1 extra face x int(steps x denoise) face steps x 0.1 s: one more face pass each.
        face_steps = int(runs.stage_steps(runs.RenderConfig(prompt="", steps=2), None, 0.4) * 0.4)
        assert both == pytest.approx(single + 2 * face_steps * 0.1, abs=0.01) and both > single


def test_the_api_estimates_a_group_run_like_the_group_page_and_starts_nothing(
    client: Any, settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    settings.ENGINE_SECONDS_PER_STEP = {"tiny": 0.1}
    group, _, _ = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    client.force_login(tenant_a.owner)
    body = {"group": group.pk, "items": [{"template": couple.pk, "count": 2}]}
    answer = client.post(f"{tenant_a.prefix}/api/runs/estimate/", body, content_type="application/json")
    assert answer.status_code == 200, answer.content
    with tenant_context(tenant_a.studio):
        plan = groups.estimate_group(subjects=groups.ready_subjects(group), items=[(couple.current_version, 2)])
        assert not RenderRun.objects.exists()
    data = answer.json()
    assert data["images"] == 2 and data["gpu_seconds"] == pytest.approx(plan.gpu_seconds)
    assert data["items"][0]["seconds"] == pytest.approx(plan.items[0].seconds)


def test_erasing_one_person_withdraws_the_groups_portraits_and_says_so(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """Marc asks to be erased: every group portrait showing him is deleted (files too) and leaves the group's
    gallery; Anna's own portraits and the group's other people are untouched; the receipt counts them."""
    tenant_a, _ = two_tenants
    group, anna, marc = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    single, _ = make_template(tenant_a, "Headshot")
    with tenant_context(tenant_a.studio):
        group_run = groups.start_group_run(group=group, items=[(couple, 2)], user=tenant_a.owner)
        own_run = runs.start_run(double=anna, items=[(single, 1)], user=tenant_a.owner)
    assert run_jobs(tenant_a, group_run) == ["succeeded"] and run_jobs(tenant_a, own_run) == ["succeeded"]
    with tenant_context(tenant_a.studio):
        gallery = gallery_services.create_gallery(client=anna.client, run=group_run, group=group, user=tenant_a.owner)
        assert gallery.group_id == group.pk and GalleryPortrait.objects.filter(gallery=gallery).count() == 2
        files = [p.image.name for p in Portrait.objects.filter(group=group)]
        own = list(Portrait.objects.filter(run=own_run).values_list("pk", flat=True))
        receipt = client_services.erase_client(client=Client.objects.get(pk=marc.client_id), performed_by=None)
        assert receipt.counts["group_portraits"] == 2 and receipt.kind == DeletionReceipt.Kind.CLIENT_ERASURE
        assert not Portrait.objects.filter(group=group).exists()
        assert not any(default_storage.exists(name) for name in files)
        assert list(Portrait.objects.filter(run=own_run).values_list("pk", flat=True)) == own  # Anna's own stay
        assert not GalleryPortrait.objects.filter(gallery=gallery).exists()  # the gallery no longer shows them
        assert Gallery.objects.filter(pk=gallery.pk).exists() and DigitalDouble.objects.filter(pk=anna.pk).exists()
        assert [m.pk for m in client_groups.members_of(group)] == [anna.client_id]


def test_a_group_job_refuses_once_a_person_was_erased_before_it_ran(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    group, anna, marc = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    with tenant_context(tenant_a.studio):
        run = groups.start_group_run(group=group, items=[(couple, 1)], user=tenant_a.owner)
        job = run.items.get().job
        RunSubject.objects.filter(run=run, slot=2).delete()  # as a deleted double leaves the run
    assert run_jobs(tenant_a, run) == ["failed"]
    failed = job_of(tenant_a, job.pk)
    assert "can't be made without them" in failed.error
    with tenant_context(tenant_a.studio):
        assert not Portrait.objects.filter(run=run).exists()


def test_a_clients_own_gallery_never_takes_a_group_portrait(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    group, anna, _ = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    with tenant_context(tenant_a.studio):
        run = groups.start_group_run(group=group, items=[(couple, 1)], user=tenant_a.owner)
    run_jobs(tenant_a, run)
    with tenant_context(tenant_a.studio):
        portrait = Portrait.objects.get(run=run)
        with pytest.raises(gallery_services.GalleryError) as refused:
            gallery_services.create_gallery(client=anna.client, portraits=[portrait.pk], user=tenant_a.owner)
        assert "group portrait" in refused.value.message
        with pytest.raises(gallery_services.GalleryError) as refused:
            gallery_services.create_gallery(client=anna.client, run=run, user=tenant_a.owner)
        assert "group's" in refused.value.message


def test_staff_run_a_group_from_its_page_and_make_its_gallery(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    group, anna, marc = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    client.force_login(add_member(tenant_a, "staff@studio-a.example", "staff"))
    prefix = tenant_a.prefix
    page = client.get(f"{prefix}/clients/groups/{group.pk}/").content.decode()
    assert "Anna Martin" in page and "Marc Martin" in page and "Run group templates" in page
    form = client.get(f"{prefix}/runs/group/{group.pk}/new/").content.decode()
    assert "Couple, studio light" in form and "Start the group run" in form
    started = client.post(
        f"{prefix}/runs/group/{group.pk}/new/",
        {f"include_{couple.pk}": "1", f"count_{couple.pk}": "1", "action": "start"},
    )
    assert started.status_code == 302
    with tenant_context(tenant_a.studio):
        run = RenderRun.objects.get(group=group)
    assert run_jobs(tenant_a, run) == ["succeeded"]
    detail = client.get(f"{prefix}/runs/{run.pk}/").content.decode()
    assert "The Martins" in detail and "Group of 2" in detail and "Create the group's gallery" in detail
    made = client.post(f"{prefix}/galleries/from-run/{run.pk}/")
    assert made.status_code == 302
    with tenant_context(tenant_a.studio):
        gallery = Gallery.objects.get(group=group)
        assert gallery.client_id == anna.client_id and gallery.title == "Portraits of The Martins"
    public = client.get(f"{prefix}/g/{gallery.token}/").content.decode()
    assert "for The Martins" in public


def test_group_pages_create_and_refuse_with_reasons(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    anna = _person(tenant_a, tiny_engine, "Anna Martin", tiny_engine["identity"])
    lea = ready_double(tenant_a, tiny_engine, name="Léa Martin")  # no consent on record
    client.force_login(tenant_a.owner)
    prefix = tenant_a.prefix
    refused = client.post(
        f"{prefix}/clients/groups/new/", {"name": "The Martins", "member_1": anna.client_id, "member_2": anna.client_id}
    )
    assert refused.status_code == 400 and "only once" in refused.content.decode()
    refused = client.post(
        f"{prefix}/clients/groups/new/", {"name": "The Martins", "member_1": anna.client_id, "member_2": lea.client_id}
    )
    assert refused.status_code == 400 and "Choose one of the studio" in refused.content.decode()
    _consent(tenant_a, lea.client)
    created = client.post(
        f"{prefix}/clients/groups/new/", {"name": "The Martins", "member_1": lea.client_id, "member_2": anna.client_id}
    )
    assert created.status_code == 302
    with tenant_context(tenant_a.studio):
        group = ClientGroup.objects.get()
        assert [c.pk for c in client_groups.members_of(group)] == [lea.client_id, anna.client_id]
    listing = client.get(f"{prefix}/clients/groups/").content.decode()
    assert "The Martins" in listing and "Léa Martin, Anna Martin" in listing


def test_groups_api_and_group_runs_api(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, tenant_b = two_tenants
    anna = _person(tenant_a, tiny_engine, "Anna Martin", tiny_engine["identity"])
    marc = _person(tenant_a, tiny_engine, "Marc Martin", tiny_engine["style"])
    stranger = _person(tenant_b, tiny_engine, "Someone Else", tiny_engine["identity"])
    couple = _couple_template(tenant_a)
    client.force_login(tenant_a.owner)
    api = f"{tenant_a.prefix}/api"
    bad = client.post(f"{api}/groups/", {"name": "X", "members": [anna.client_id]}, content_type="application/json")
    assert bad.status_code == 400
    foreign = client.post(
        f"{api}/groups/",
        {"name": "X", "members": [anna.client_id, stranger.client_id]},
        content_type="application/json",
    )
    assert foreign.status_code == 400 and "doesn't exist" in foreign.content.decode()
    huge = client.post(  # beyond any database id (schemathesis found the 500 it was)
        f"{api}/groups/", {"name": "X", "members": [anna.client_id, 2**70]}, content_type="application/json"
    )
    assert huge.status_code == 400 and "doesn't exist" in huge.content.decode()
    made = client.post(
        f"{api}/groups/",
        {"name": "The Martins", "members": [anna.client_id, marc.client_id]},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert [(m["name"], m["slot"]) for m in body["members"]] == [("Anna Martin", 1), ("Marc Martin", 2)]
    run = client.post(
        f"{api}/runs/",
        {"group": body["id"], "items": [{"template": couple.pk, "count": 1}]},
        content_type="application/json",
    )
    assert run.status_code == 201, run.content
    assert run.json()["group"] == body["id"] and [s["slot"] for s in run.json()["subjects"]] == [1, 2]
    both = client.post(
        f"{api}/runs/",
        {"group": body["id"], "double": anna.pk, "items": [{"template": couple.pk, "count": 1}]},
        content_type="application/json",
    )
    assert both.status_code == 400


def test_a_group_template_photo_puts_each_persons_face_into_the_photographers_photo(
    settings: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """A real photo of two people (the fixtures' person A and person B side by side): the face detector finds both,
    the photographer's slot boxes say Marc is on the left, and each face is inpainted with its own person's LoRA;
    the photo outside the faces is kept."""
    from tests.templates_app.test_subject_slots import two_people_jpeg

    tenant_a, _ = two_tenants
    settings.ENGINE_DEMO_MAX_LONG_SIDE = 400
    group, anna, marc = _couple(tenant_a, tiny_engine)
    template, version = make_template(
        tenant_a,
        "Our wedding photo",
        prompt=COUPLE_PROMPT,
        subject_slots=2,
        slot_boxes=[[0.5, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 1.0]],  # Anna (slot 1) on the right, Marc on the left
        reference_mode="photo",
        strength=0.8,
        images_per_run=1,
        long_side=0,
    )
    with tenant_context(tenant_a.studio):
        version.reference_image.save("couple.jpg", ContentFile(two_people_jpeg()), save=False)
        type(version).objects.filter(pk=version.pk).update(reference_image=version.reference_image.name)
        run = groups.start_group_run(group=group, items=[(template, 1)], user=tenant_a.owner)
    assert run_jobs(tenant_a, run) == ["succeeded"]
    with tenant_context(tenant_a.studio):
        made = Portrait.objects.get(run=run)
        entry = next(s for s in made.recipe["stages"] if s["name"] == "template_photo")
        assert entry["faces"] == 2
        per_face = {f["slot"]: f for f in entry["per_face"]}
        assert per_face[1]["identity_sha256"] == _sha(tiny_engine["identity"])
        assert per_face[2]["identity_sha256"] == _sha(tiny_engine["style"])
        width = made.recipe["stages"][0]["photo_size"][0]
        assert per_face[1]["face"][0] > width / 2 > per_face[2]["face"][2]  # Anna's face is the right-hand one
        faces = {f.slot: f for f in PortraitSubject.objects.filter(portrait=made)}
        assert faces[1].double_id == anna.pk and faces[2].double_id == marc.pk
        from generation import portraits

        job = portraits.more_like_me(portrait=made, user=tenant_a.owner)  # the photo again, each face closer
    from jobs.tasks import run_job

    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    with tenant_context(tenant_a.studio):
        child = Portrait.objects.get(job=job)
        assert child.parent_id == made.pk and child.identity_weight == pytest.approx(made.identity_weight + 0.15)


def test_the_galleries_api_makes_a_groups_gallery(
    client: Any, two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    tenant_a, _ = two_tenants
    group, anna, marc = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    with tenant_context(tenant_a.studio):
        run = groups.start_group_run(group=group, items=[(couple, 1)], user=tenant_a.owner)
    run_jobs(tenant_a, run)
    client.force_login(tenant_a.owner)
    api = f"{tenant_a.prefix}/api"
    made = client.post(
        f"{api}/galleries/",
        {"client": marc.client_id, "group": group.pk, "run": run.pk},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["group_id"] == group.pk and made.json()["title"] == "Portraits of The Martins"
    not_theirs = client.post(
        f"{api}/galleries/", {"client": marc.client_id, "run": run.pk}, content_type="application/json"
    )
    assert not_theirs.status_code == 400 and "group's" in not_theirs.content.decode()


def test_more_like_me_and_a_reroll_of_a_group_portrait_render_every_face_again(
    two_tenants: tuple[Tenant, Tenant], tiny_engine: dict[str, Any]
) -> None:
    """ "More like me" on a group portrait: the same scene (seed), each face one step stronger with its own
    person's LoRA; the new portrait joins the group and the item. A re-roll: a new seed. Both billed per person."""
    from generation import portraits

    tenant_a, _ = two_tenants
    group, anna, marc = _couple(tenant_a, tiny_engine)
    couple = _couple_template(tenant_a)
    with tenant_context(tenant_a.studio):
        run = groups.start_group_run(group=group, items=[(couple, 1)], user=tenant_a.owner)
    run_jobs(tenant_a, run)
    with tenant_context(tenant_a.studio):
        parent = Portrait.objects.get(run=run)
        assert portraits.can_go_more_like_me(parent)
        job = portraits.more_like_me(portrait=parent, user=tenant_a.owner)
        assert job.payload["people"] == 2 and job.payload["more_like_me_of"] == parent.pk
        reroll = portraits.reroll(portrait=parent, user=tenant_a.owner)
    from jobs.tasks import run_job

    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    assert run_job(reroll.pk, tenant_a.studio.pk) == "succeeded"
    with tenant_context(tenant_a.studio):
        child = Portrait.objects.get(job=job)
        before = next(s for s in parent.recipe["stages"] if s["name"] == "face_pass")
        after = next(s for s in child.recipe["stages"] if s["name"] == "face_pass")
        assert child.parent_id == parent.pk and child.group_id == group.pk and child.item_id == parent.item_id
        assert child.seed == parent.seed and child.recipe["more_like_me_step"] == 1
        assert after["identity_weight"] == pytest.approx(before["identity_weight"] + 0.15)
        assert [f["identity_sha256"] for f in after["per_face"]] == [
            _sha(tiny_engine["identity"]),
            _sha(tiny_engine["style"]),
        ]
        assert [(f.slot, f.double_id) for f in PortraitSubject.objects.filter(portrait=child).order_by("slot")] == [
            (1, anna.pk),
            (2, marc.pk),
        ]
        rerolled = Portrait.objects.get(job=reroll)
        assert rerolled.seed == reroll.payload["seed"] != parent.seed and rerolled.group_id == group.pk
        # Once a person is erased, their group portraits can't be rendered again (they are gone).
        client_services.erase_client(client=Client.objects.get(pk=marc.client_id), performed_by=None)
        assert not Portrait.objects.filter(group=group).exists()
