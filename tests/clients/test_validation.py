"""The validation job on real files: every rejection reason, colour modes, metadata stripping, the set-level
checks (different person, near-duplicates), and robustness (a crashing photo never fails the set)."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from clients import validation
from clients.models import Photo
from engine.safety import EXPLICIT_MESSAGE, SafetyReport
from tenants.context import tenant_context
from tests.clients.conftest import fixture_bytes, jpeg_bytes, reload, twenty_photos

pytestmark = pytest.mark.django_db


def _image(name: str) -> Image.Image:
    return Image.open(io.BytesIO(fixture_bytes(name))).convert("RGB")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _storage_has(field) -> bool:
    return bool(field.name) and field.storage.exists(field.name)


def test_good_photo_is_accepted_with_clean_derivatives(tenant_a, add, validate):
    photo = add(fixture_bytes("person_a_01.jpg"), "portrait.jpg")
    assert photo.status == Photo.Status.PENDING and _storage_has(photo.original)
    job = validate()
    photo = reload(tenant_a, photo)
    assert (photo.status, photo.reason) == (Photo.Status.ACCEPTED, "")
    assert photo.detected_format == "JPEG" and photo.width and photo.height
    assert photo.phash and photo.sharpness > 20 and 60 < photo.brightness < 210
    assert _storage_has(photo.thumbnail) and _storage_has(photo.face_crop)
    with photo.thumbnail.open("rb") as fh:
        thumb = Image.open(fh)
        assert max(thumb.size) <= validation.THUMBNAIL_SIDE and not thumb.getexif() and "icc_profile" not in thumb.info
    assert job.progress == 100 and job.result["accepted"] == 1


def test_gps_exif_and_orientation_never_reach_the_derivatives(tenant_a, add, validate):
    image = _image("person_a_01.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: stored sideways
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    out = io.BytesIO()
    image.rotate(90, expand=True).save(out, format="JPEG", exif=exif.tobytes())
    photo = add(out.getvalue(), "gps.jpg")
    validate()
    photo = reload(tenant_a, photo)
    assert photo.status == Photo.Status.ACCEPTED, photo.reason
    assert photo.width == image.width and photo.height == image.height  # upright
    for field in (photo.thumbnail, photo.face_crop):
        with field.open("rb") as fh:
            data = fh.read()
        assert b"Exif" not in data[:4096] and not Image.open(io.BytesIO(data)).getexif()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("two_people.jpg", "several_faces"),
        ("three_people.jpg", "several_faces"),
        ("person_a_07_small.jpg", "face_too_small"),
        ("person_a_05_partial.jpg", "face_cut_off"),
    ],
)
def test_fixture_rejections(tenant_a, add, validate, name, code):
    photo = add(fixture_bytes(name), name)
    validate()
    photo = reload(tenant_a, photo)
    assert (photo.status, photo.reason_code) == (Photo.Status.REJECTED, code)
    assert photo.reason and _storage_has(photo.thumbnail) and not photo.face_crop


def test_blurry_dark_overexposed_and_faceless(tenant_a, add, validate):
    image = _image("person_a_01.jpg")
    blurry = add(jpeg_bytes(image.filter(ImageFilter.GaussianBlur(6))), "blurry.jpg")
    dark = add(jpeg_bytes(ImageEnhance.Brightness(image).enhance(0.15)), "dark.jpg")
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    faceless = add(jpeg_bytes(Image.fromarray(np.stack([gradient] * 3, axis=-1))), "wall.jpg")
    validate()
    codes = {p.original_name: reload(tenant_a, p).reason_code for p in (blurry, dark, faceless)}
    assert codes == {"blurry.jpg": "blurry", "dark.jpg": "badly_exposed", "wall.jpg": "no_face"}
    assert "blurry" in reload(tenant_a, blurry).reason


def test_colour_modes_are_normalised_and_accepted(tenant_a, add, validate):
    cmyk = io.BytesIO()
    _image("person_a_01.jpg").convert("CMYK").save(cmyk, format="JPEG", quality=92)
    grey16 = np.asarray(_image("person_a_03.jpg").convert("L"), dtype=np.uint16) * 257
    palette = _image("person_a_04.jpg").convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    photos = [
        add(cmyk.getvalue(), "cmyk.jpg"),
        add(_png(Image.fromarray(grey16)), "grey16.png"),
        add(_png(palette), "palette.png"),
        add(fixture_bytes("person_a_08_rgba.png"), "rgba.png"),
    ]
    validate()
    for photo in photos:
        photo = reload(tenant_a, photo)
        assert photo.status == Photo.Status.ACCEPTED, (photo.original_name, photo.reason)
        with photo.thumbnail.open("rb") as fh:
            assert Image.open(fh).mode == "RGB"


def _bomb() -> bytes:
    """A valid PNG header declaring 20000x20000 pixels (a decompression bomb), with one compressed row."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 20001))
        + chunk(b"IEND", b"")
    )


def test_malformed_files_are_rejected_with_specific_reasons(tenant_a, add, validate):
    good = fixture_bytes("person_a_01.jpg")
    stored = {
        "bomb.png": add(_bomb(), "bomb.png"),
        "truncated.jpg": add(good[: len(good) // 2], "truncated.jpg"),
        "renamed-png.jpg": add(fixture_bytes("person_a_08_rgba.png"), "renamed-png.jpg"),
        "tiny.jpg": add(jpeg_bytes(Image.new("RGB", (100, 80), "grey")), "tiny.jpg"),
    }
    refused_at_upload = {
        "empty.jpg": add(b"", "empty.jpg"),
        "drawing.svg.jpg": add(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "a.jpg"),
        "page.jpg": add(b"<!DOCTYPE html><html><body>hi</body></html>", "page.jpg"),
        "doc.jpg": add(b"%PDF-1.4\n%...", "doc.jpg"),
        "anim.gif": add(b"GIF89a" + b"\x00" * 64, "anim.gif"),
        "prog.jpg": add(b"MZ\x90\x00" + b"\x00" * 64, "prog.jpg"),
    }
    for photo in refused_at_upload.values():
        assert photo.status == Photo.Status.REJECTED and not photo.original  # never stored
    assert refused_at_upload["empty.jpg"].reason_code == "empty"
    assert "SVG" in refused_at_upload["drawing.svg.jpg"].reason
    assert "HTML" in refused_at_upload["page.jpg"].reason
    assert "PDF" in refused_at_upload["doc.jpg"].reason
    assert "GIF" in refused_at_upload["anim.gif"].reason
    assert "program" in refused_at_upload["prog.jpg"].reason
    validate()
    codes = {name: reload(tenant_a, p).reason_code for name, p in stored.items()}
    assert codes == {
        "bomb.png": "decompression_bomb",
        "truncated.jpg": "truncated",
        "renamed-png.jpg": "",  # type from the bytes: a real PNG photo, accepted
        "tiny.jpg": "too_small",
    }
    renamed = reload(tenant_a, stored["renamed-png.jpg"])
    assert renamed.detected_format == "PNG" and renamed.original.name.endswith(".png")


def test_explicit_photo_is_rejected_without_keeping_a_thumbnail(tenant_a, add, validate, monkeypatch):
    # No explicit fixture is shipped: the engine's classifier is tested on nudenet's raw output
    # (tests/engine/test_safety.py); here the verdict's handling.
    monkeypatch.setattr(
        validation,
        "check_safety",
        lambda image: SafetyReport(findings=(object(),), code="explicit", message=EXPLICIT_MESSAGE),
    )
    photo = add(fixture_bytes("person_a_01.jpg"))
    validate()
    photo = reload(tenant_a, photo)
    assert (photo.status, photo.reason_code, photo.reason) == (Photo.Status.REJECTED, "explicit", EXPLICIT_MESSAGE)
    assert not photo.thumbnail and not photo.face_crop


def test_a_crash_on_one_photo_rejects_only_that_photo(tenant_a, add, validate, monkeypatch):
    real = validation.analyse_face
    calls = []

    def flaky(image, rules):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("dlib exploded")
        return real(image, rules)

    monkeypatch.setattr(validation, "analyse_face", flaky)
    first = add(fixture_bytes("person_a_01.jpg"), "first.jpg")
    second = add(fixture_bytes("person_a_03.jpg"), "second.jpg")
    missing = add(fixture_bytes("person_a_04.jpg"), "missing.jpg")
    missing.original.storage.delete(missing.original.name)
    job = validate()
    assert job.state == "succeeded"
    assert reload(tenant_a, first).reason == validation.PROCESSING_ERROR
    assert reload(tenant_a, second).status == Photo.Status.ACCEPTED
    assert reload(tenant_a, missing).reason_code == "missing"


def test_a_different_person_is_flagged_and_the_client_kept(tenant_a, add, validate):
    client_photos = [
        add(fixture_bytes(name), name)
        for name in ["person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg"]
    ]
    friend = add(fixture_bytes("person_b_01.jpg"), "friend.jpg")
    job = validate()
    friend = reload(tenant_a, friend)
    assert (friend.status, friend.reason_code) == (Photo.Status.REJECTED, "different_person")
    assert friend.reason == validation.DIFFERENT_PERSON and friend.identity_distance > 0.6
    assert not friend.face_crop
    for photo in client_photos:
        photo = reload(tenant_a, photo)
        assert photo.status == Photo.Status.ACCEPTED and photo.identity_distance < 0.6
    assert job.result["different_person"] == 1


def test_a_later_batch_is_judged_against_the_accepted_photos(tenant_a, add, validate):
    for name in ["person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg"]:
        add(fixture_bytes(name), name)
    validate()
    later_a = add(fixture_bytes("person_a_04.jpg"), "later.jpg")
    later_b = [add(fixture_bytes(name), name) for name in ["person_b_01.jpg", "person_b_02.jpg"]]
    validate()  # embeddings of the first batch are recomputed from their face crops
    assert reload(tenant_a, later_a).status == Photo.Status.ACCEPTED
    assert [reload(tenant_a, p).reason_code for p in later_b] == ["different_person", "different_person"]


def test_near_duplicates_keep_the_sharper_photo(tenant_a, add, validate):
    sharp = add(fixture_bytes("person_a_02.jpg"), "a.jpg")
    softer = add(jpeg_bytes(_image("person_a_02.jpg").filter(ImageFilter.GaussianBlur(0.8))), "a-soft.jpg")
    rgba_copy = add(fixture_bytes("person_a_08_rgba.png"), "a.png")  # the same shot as person_a_02
    other = add(fixture_bytes("person_a_01.jpg"), "other.jpg")
    validate()
    assert reload(tenant_a, sharp).status == Photo.Status.ACCEPTED or reload(tenant_a, rgba_copy).status == (
        Photo.Status.ACCEPTED
    )
    statuses = [reload(tenant_a, p) for p in (sharp, softer, rgba_copy)]
    assert sum(p.status == Photo.Status.ACCEPTED for p in statuses) == 1
    kept = next(p for p in statuses if p.status == Photo.Status.ACCEPTED)
    assert kept.sharpness == max(p.sharpness for p in statuses)
    for photo in statuses:
        if photo.pk != kept.pk:
            assert (photo.reason_code, photo.reason) == ("near_duplicate", validation.NEAR_DUPLICATE)
    assert reload(tenant_a, other).status == Photo.Status.ACCEPTED


def test_a_twenty_photo_set_is_accepted_and_ready(tenant_a, photo_set, add, validate):
    from clients.selectors import readiness

    for name, data in twenty_photos().items():
        add(data, name)
    job = validate()
    assert job.result["checked"] == 20
    with tenant_context(tenant_a.studio):
        ready = readiness(photo_set=photo_set)
    assert (ready.accepted, ready.level, ready.can_train, ready.percent) == (20, "recommended", True, 100)


def test_decided_photos_are_not_analysed_again(tenant_a, add, validate, monkeypatch):
    first = add(fixture_bytes("person_a_01.jpg"))
    validate()
    seen = []
    real = validation.prepare_photo
    monkeypatch.setattr(
        validation, "prepare_photo", lambda source, limits: seen.append(1) or real(source, limits=limits)
    )
    validate()
    assert seen == [] and reload(tenant_a, first).status == Photo.Status.ACCEPTED


def test_cancellation_stops_between_photos_and_keeps_verdicts(tenant_a, photo_set, add, monkeypatch):
    from clients import services
    from jobs.models import Job
    from jobs.tasks import run_job

    photos = [add(fixture_bytes(n), n) for n in ("person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg")]
    with tenant_context(tenant_a.studio):
        job = services.request_validation(photo_set=photo_set)
    real = validation._finish_stored

    def finish_then_cancel(photo, prepared, rules):
        verdict = real(photo, prepared, rules)
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        return verdict

    monkeypatch.setattr(validation, "_finish_stored", finish_then_cancel)
    assert run_job(job.pk, tenant_a.studio.pk) == "cancelled"
    assert [reload(tenant_a, p).status for p in photos] == ["accepted", "pending", "pending"]


# --- Verdict integrity across rounds (issue 13, finding 1) ------------------------------------------------------


def _stranger_photos() -> dict[str, bytes]:
    """Six photos of someone else (person B), all different shots (no near-duplicates among them)."""
    from tests.face_fixtures import shots

    photos = {}
    for name in ("person_b_01.jpg", "person_b_02.jpg"):
        for label, shot in list(shots(name).items())[:3]:
            photos[f"stranger-{label}-{name}"] = jpeg_bytes(shot)
    return photos


@pytest.fixture
def status_history(tenant_a, photo_set, monkeypatch):
    """Every photo's status, read from the database at each progress report of the job, plus an optional action
    run once at the first report of the set-level checks ("Comparing the photos of the set")."""
    from jobs.registry import JobContext

    history: dict[int, list[str]] = {}
    at_comparing: list = []
    real = JobContext.progress

    def progress(self, pct, message=""):
        real(self, pct, message)
        if message.startswith("Comparing") and at_comparing:
            at_comparing.pop(0)()
        for pk, status in Photo.objects.filter(photo_set_id=photo_set.pk).values_list("pk", "status"):
            seen = history.setdefault(pk, [])
            if not seen or seen[-1] != status:
                seen.append(status)

    monkeypatch.setattr(JobContext, "progress", progress)
    history_at_comparing = history, at_comparing
    return history_at_comparing


def test_a_later_round_of_the_same_job_cannot_outvote_the_accepted_photos(tenant_a, add, validate, status_history):
    """Issue 13, finding 1: the client's 3 photos are accepted in the job's first round; a stranger's 6 photos
    arrive while the job is still running (they make its second round). The client's photos are established:
    they stay accepted, and the stranger's are rejected as a different person (before: the photos of the first
    round still counted as new, the majority decided, and the client's 3 flipped to "different person")."""
    history, at_comparing = status_history
    client_photos = [add(fixture_bytes(n), n) for n in ("person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg")]
    strangers: list[Photo] = []
    at_comparing.append(lambda: strangers.extend(add(data, name) for name, data in _stranger_photos().items()))
    job = validate()
    assert len(strangers) == 6
    assert [reload(tenant_a, p).status for p in client_photos] == [Photo.Status.ACCEPTED] * 3
    assert [reload(tenant_a, p).reason_code for p in strangers] == ["different_person"] * 6
    assert job.result["different_person"] == 6 and job.result["accepted"] == 3
    assert all(
        seen[:1] == ["pending"] and "accepted" not in seen
        for pk, seen in history.items()
        if pk in {p.pk for p in strangers}
    )


def test_one_or_two_established_photos_are_never_outvoted_by_a_later_batch(tenant_a, add, validate):
    """Issue 13, finding 1: with only 2 photos accepted earlier (too few for a same-person check of their own), a
    later batch of 4 photos of someone else is judged against those 2, not by majority: the client's photos keep
    their verdict (before: the 6 were judged together and the client's 2 were rejected)."""
    client_photos = [add(fixture_bytes(n), n) for n in ("person_a_01.jpg", "person_a_02.jpg")]
    validate()
    strangers = [add(data, name) for name, data in list(_stranger_photos().items())[:4]]
    validate()
    assert [reload(tenant_a, p).status for p in client_photos] == [Photo.Status.ACCEPTED] * 2
    assert [reload(tenant_a, p).reason_code for p in strangers] == ["different_person"] * 4


def test_no_photo_is_seen_accepted_before_the_set_checks_reject_it(tenant_a, add, validate, status_history):
    """Issue 13, finding 1: a round's acceptances become visible only with its set-level checks, so a photo that
    the same-person check rejects is never seen as Accepted first (before: per-photo verdicts were committed
    first, and the friend's photo showed Accepted, then flipped)."""
    history, _ = status_history
    for name in ["person_a_01.jpg", "person_a_02.jpg", "person_a_03.jpg", "person_a_04.jpg"]:
        add(fixture_bytes(name), name)
    friend = add(fixture_bytes("person_b_01.jpg"), "friend.jpg")
    validate()
    assert reload(tenant_a, friend).reason_code == "different_person"
    assert history[friend.pk] == ["pending", "rejected"], history
    for seen in history.values():
        assert not ("accepted" in seen and "rejected" in seen[seen.index("accepted") :]), history


def test_a_photo_added_as_the_job_ends_gets_a_follow_up_job(tenant_a, photo_set, add, monkeypatch):
    """Issue 13, finding 2 (a set never attaches photos to a job that won't look at them): a photo uploaded after
    the validation job's last look for pending photos, while the job still shows as running, attached to that job
    (request_validation returned it) and would have waited for ever. The job's end now starts a follow-up job."""
    from clients import jobs, services
    from jobs.tasks import run_job

    first = add(fixture_bytes("person_a_01.jpg"), "first.jpg")
    late: list[Photo] = []
    real = jobs.validate_photo_set

    def validate_then_upload(**kwargs):
        result = real(**kwargs)
        late.append(add(fixture_bytes("person_a_02.jpg"), "late.jpg"))
        with tenant_context(tenant_a.studio):
            attached = services.request_validation(photo_set=photo_set)
        assert attached.pk == job.pk and attached.state == "running"
        return result

    monkeypatch.setattr(jobs, "validate_photo_set", validate_then_upload)
    with tenant_context(tenant_a.studio):
        job = services.request_validation(photo_set=photo_set, user=tenant_a.owner)
    assert run_job(job.pk, tenant_a.studio.pk) == "succeeded"
    assert reload(tenant_a, late[0]).status == Photo.Status.PENDING
    with tenant_context(tenant_a.studio):
        follow_up = type(photo_set).objects.select_related("validation_job").get(pk=photo_set.pk).validation_job
    assert follow_up.pk != job.pk and follow_up.state == "queued"
    monkeypatch.setattr(jobs, "validate_photo_set", real)
    assert run_job(follow_up.pk, tenant_a.studio.pk) == "succeeded"
    assert [reload(tenant_a, p).status for p in (first, late[0])] == [Photo.Status.ACCEPTED] * 2
