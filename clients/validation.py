"""Validation of a photo set: one verdict per photo, then the set-level checks.

Per photo (only PENDING ones; a decided photo is never re-analysed):

1. `load_photo` from private storage with the INTAKE limits (type from the bytes, size, pixels, bombs,
   truncation, EXIF orientation, colour modes) → `PhotoRejected` becomes the verdict;
2. a metadata-free 512 px JPEG thumbnail (kept, so the verdict stays understandable), width/height/format,
   perceptual hash;
3. `check_safety` (explicit nudity: rejected first, and no thumbnail is kept for such a photo);
4. `analyse_face` (one dominant face, size, framing, sharpness, exposure; detection on a downscaled copy) →
   the first issue's message;
5. sharpness and brightness stored; for an accepted photo a metadata-free face crop (what training uses; the
   privacy lifecycle deletes it with the original).

Steps 1-3 of the next photo run in a background thread while this thread runs step 4 on the current one
(dlib holds the GIL and its detector is not thread-safe, so dlib stays on this thread; Pillow and onnxruntime
release the GIL). The database is only touched from this thread.

Anything unexpected while processing one photo becomes a clear rejection of that photo ("We couldn't process
this photo"), never a failed job: a bad photo never disturbs the others.

Set level, over the accepted photos, once per round (a round is the PENDING photos found when it starts; photos
uploaded while a round runs make the next one). A photo's verdict becomes visible only when its round's set-level
checks are done: a rejection by the photo's own checks is final and stored at once, but an acceptance is held in
memory until the round's set checks ran, then the round's verdicts are written in one transaction. So nobody ever
sees a photo go Accepted → Rejected unless staff act (issue 13, finding 1). Photos accepted in an earlier round (of
this job or of an earlier one) are *established*: no set-level check ever rejects them.

- same person: dlib embeddings (kept in memory only, never stored). When the set has established photos, they are
  the reference: the centre is taken from them and only the round's new photos can be flagged, so a later batch of
  someone else's photos can never outvote the client, however many. In a set's first round every accepted photo is
  judged together (engine: `identity_outliers`, at least 3). Embeddings of established photos are recomputed from
  their face crop (a small image: fast), or the original.
- near-duplicates: perceptual hashes; of each pair one is rejected: an established photo is kept, otherwise the
  sharper one (two established near-duplicates are both kept).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from PIL import Image

from clients.models import Photo, PhotoSet
from engine.faces import (
    MIN_PHOTOS_FOR_IDENTITY,
    FaceBox,
    FaceRules,
    analyse_face,
    detect_faces,
    face_embedding,
    identity_distances,
    identity_outliers,
    robust_centre,
)
from engine.images import (
    ImageLimits,
    PhotoRejected,
    encode_clean_jpeg,
    load_photo,
    near_duplicates,
    perceptual_hash,
)
from engine.safety import check_safety

log = structlog.get_logger("clients.validation")

THUMBNAIL_SIDE = 512
FACE_CROP_MAX_SIDE = 1024
#: The face crop extends the detector's (tight) box by this fraction of its side on every side: hair, chin, ears.
FACE_CROP_PAD = 0.6
MAX_ROUNDS = 10

PROCESSING_ERROR = "We couldn't process this photo. Please try another one."
MISSING_FILE = "The file of this photo is missing. Please upload it again."
DIFFERENT_PERSON = "This looks like a different person from the rest of the set."
NEAR_DUPLICATE = "Almost the same as another photo in the set: use a different shot."


def intake_limits() -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.INTAKE_MAX_UPLOAD_BYTES,
        max_pixels=settings.INTAKE_MAX_PIXELS,
        min_side=settings.INTAKE_MIN_FACE_PX,
    )


def face_rules() -> FaceRules:
    return FaceRules(min_face_px=settings.INTAKE_MIN_FACE_PX, min_sharpness=settings.INTAKE_MIN_SHARPNESS)


# --- One photo (no database) ----------------------------------------------------------------------------------


@dataclass
class PhotoVerdict:
    accepted: bool
    code: str = ""
    message: str = ""
    format: str = ""
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None
    face_crop: bytes | None = None
    phash: str = ""
    sharpness: float | None = None
    brightness: float | None = None
    embedding: np.ndarray | None = None
    identity_distance: float | None = None


def _rejected(code: str, message: str, **fields: Any) -> PhotoVerdict:
    return PhotoVerdict(accepted=False, code=code, message=message, **fields)


def _face_crop(image: Image.Image, box: FaceBox) -> bytes:
    pad = round(max(box.width, box.height) * FACE_CROP_PAD)
    area = (
        max(box.left - pad, 0),
        max(box.top - pad, 0),
        min(box.right + pad, image.width),
        min(box.bottom + pad, image.height),
    )
    return encode_clean_jpeg(image.crop(area), quality=92, max_side=FACE_CROP_MAX_SIDE)


@dataclass
class Prepared:
    """The first half of a photo's analysis, which needs no dlib and no database, so it can run in a
    background thread while the main thread checks the previous photo's face: read and decode, thumbnail,
    perceptual hash, content safety (onnxruntime and Pillow release the GIL while they work)."""

    verdict: PhotoVerdict | None = None
    image: Image.Image | None = None
    facts: dict[str, Any] | None = None
    explicit: tuple[str, str] | None = None


def prepare_photo(source: Any, *, limits: ImageLimits) -> Prepared:
    try:
        loaded = load_photo(source, limits=limits)
    except PhotoRejected as exc:
        return Prepared(verdict=_rejected(exc.code, exc.message))
    image = loaded.image
    scale = THUMBNAIL_SIDE / max(image.size)
    small = image
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        small = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    facts: dict[str, Any] = {
        "format": loaded.format,
        "width": image.width,
        "height": image.height,
        "thumbnail": encode_clean_jpeg(small, quality=85),
        "phash": perceptual_hash(small),
    }
    safety = check_safety(image)
    explicit = None
    if not safety.ok:
        explicit = (safety.code or "explicit", safety.message or "This photo can't be used.")
    return Prepared(image=image, facts=facts, explicit=explicit)


def finish_photo(prepared: Prepared, *, rules: FaceRules) -> PhotoVerdict:
    """The second half: the face checks (dlib: main thread only, its detector is not thread-safe)."""
    if prepared.verdict is not None:
        return prepared.verdict
    assert prepared.image is not None and prepared.facts is not None
    facts = dict(prepared.facts)
    if prepared.explicit is not None:
        facts["thumbnail"] = None  # no picture of explicit content is kept
        return _rejected(*prepared.explicit, **facts)
    image = prepared.image
    report = analyse_face(image, rules)
    facts.update(sharpness=report.sharpness, brightness=report.brightness)
    if report.issues:
        issue = report.issues[0]
        return _rejected(issue.code, issue.message, **facts)
    assert report.main_box is not None
    return PhotoVerdict(
        accepted=True, face_crop=_face_crop(image, report.main_box), embedding=report.embedding, **facts
    )


def analyse_photo(source: Any, *, limits: ImageLimits, rules: FaceRules) -> PhotoVerdict:
    """The verdict on one photo file (a binary stream, bytes or a path). Raises only on unexpected errors."""
    return finish_photo(prepare_photo(source, limits=limits), rules=rules)


def embedding_from_image(image: Image.Image, rules: FaceRules) -> np.ndarray | None:
    boxes = detect_faces(image, rules)
    if not boxes:
        return None
    return face_embedding(image if image.mode == "RGB" else image.convert("RGB"), boxes[0], rules)


# --- Database -------------------------------------------------------------------------------------------------


def _delete(field: FieldFile) -> None:
    if field and field.name:
        field.storage.delete(field.name)


def _write_files(photo: Photo, verdict: PhotoVerdict) -> None:
    """The verdict's derivatives to storage (their names on `photo`); a previous attempt's are removed first."""
    _delete(photo.thumbnail)  # a previous attempt that died half-way
    _delete(photo.face_crop)
    photo.thumbnail.name = photo.face_crop.name = ""
    if verdict.thumbnail:
        photo.thumbnail.save("thumbnail.jpg", ContentFile(verdict.thumbnail), save=False)
    if verdict.face_crop and verdict.accepted:
        photo.face_crop.save("face.jpg", ContentFile(verdict.face_crop), save=False)


def _write_row(photo: Photo, verdict: PhotoVerdict) -> bool:
    """The verdict on the photo's row, if it is still PENDING; otherwise its new derivatives are removed."""
    updated = Photo.objects.filter(pk=photo.pk, status=Photo.Status.PENDING).update(
        status=Photo.Status.ACCEPTED if verdict.accepted else Photo.Status.REJECTED,
        reason_code=verdict.code[:32],
        reason=verdict.message[:300],
        detected_format=verdict.format or photo.detected_format,
        width=verdict.width,
        height=verdict.height,
        thumbnail=photo.thumbnail.name or "",
        face_crop=photo.face_crop.name or "",
        phash=verdict.phash,
        sharpness=verdict.sharpness,
        brightness=verdict.brightness,
        identity_distance=verdict.identity_distance,
        validated_at=timezone.now(),
    )
    if not updated:
        _delete(photo.thumbnail)
        _delete(photo.face_crop)
        return False
    return True


def _store_verdict(photo: Photo, verdict: PhotoVerdict) -> bool:
    """Write the verdict and derivatives of a PENDING photo. False if the photo is gone or no longer pending."""
    _write_files(photo, verdict)
    return _write_row(photo, verdict)


def _prepare_stored(photo: Photo, limits: ImageLimits) -> Prepared:
    """prepare_photo on the stored original; any error becomes a rejection (runs in the prefetch thread)."""
    try:
        if not photo.original or not photo.original.name:
            return Prepared(verdict=_rejected("missing", MISSING_FILE))
        try:
            handle = photo.original.storage.open(photo.original.name, "rb")
        except FileNotFoundError:
            return Prepared(verdict=_rejected("missing", MISSING_FILE))
        with handle:
            return prepare_photo(handle, limits=limits)
    except Exception:
        log.exception("photo_validation_crashed", photo_id=photo.pk, step="prepare")
        return Prepared(verdict=_rejected("processing_error", PROCESSING_ERROR))


def _finish_stored(photo: Photo, prepared: Prepared, rules: FaceRules) -> PhotoVerdict:
    """The photo's own verdict. A rejection is stored at once (final: no set check can change it); an acceptance
    is only returned, to be stored with its round's set-level outcome (`_conclude_round`)."""
    try:
        verdict = finish_photo(prepared, rules=rules)
    except Exception:
        log.exception("photo_validation_crashed", photo_id=photo.pk, step="faces")
        verdict = _rejected("processing_error", PROCESSING_ERROR)
    if verdict.accepted:
        return verdict
    try:
        _store_verdict(photo, verdict)
    except OSError:
        log.exception("photo_validation_store_failed", photo_id=photo.pk)
        verdict = _rejected("processing_error", PROCESSING_ERROR)
        _store_verdict(photo, verdict)
    log.info("photo_validated", photo_id=photo.pk, accepted=False, code=verdict.code or None)
    return verdict


def recompute_embedding(photo: Photo, *, limits: ImageLimits, rules: FaceRules) -> np.ndarray | None:
    """The embedding of an already accepted photo, from its face crop (fast) or else its original."""
    for field in (photo.face_crop, photo.original):
        if not field or not field.name:
            continue
        try:
            with field.storage.open(field.name, "rb") as handle:
                image = load_photo(handle, limits=limits).image
            embedding = embedding_from_image(image, rules)
        except (PhotoRejected, OSError):
            continue
        except Exception:
            log.exception("embedding_recompute_failed", photo_id=photo.pk)
            continue
        if embedding is not None:
            return embedding
    return None


@dataclass
class _Entry:
    """A photo in the set-level checks: established (accepted in an earlier round) or a candidate of this round."""

    pk: int
    established: bool
    phash: str
    sharpness: float
    vector: np.ndarray | None


@dataclass
class SetJudgement:
    """What a round's set-level checks decided: candidates rejected as a different person (with their distance)
    or as a near-duplicate, and every judged photo's distance to the set's identity centre."""

    different_person: dict[int, float]
    near_duplicate: set[int]
    distances: dict[int, float]

    def counts(self) -> dict[str, int]:
        return {"different_person": len(self.different_person), "near_duplicate": len(self.near_duplicate)}


def judge_set(
    *,
    photo_set: PhotoSet,
    candidates: dict[int, PhotoVerdict],
    limits: ImageLimits,
    rules: FaceRules,
) -> SetJudgement:
    """The set-level checks of a round: different person, then near-duplicates. `candidates` are the round's
    accepted photos (not yet stored); the set's ACCEPTED photos are established and are never rejected here."""
    entries: list[_Entry] = []
    for photo in Photo.objects.filter(photo_set=photo_set, status=Photo.Status.ACCEPTED).order_by("pk"):
        if photo.pk in candidates:
            continue
        vector = recompute_embedding(photo, limits=limits, rules=rules)
        entries.append(_Entry(photo.pk, True, photo.phash, photo.sharpness or 0.0, vector))
    for pk, verdict in sorted(candidates.items()):
        entries.append(_Entry(pk, False, verdict.phash, verdict.sharpness or 0.0, verdict.embedding))
    judgement = SetJudgement(different_person={}, near_duplicate=set(), distances={})
    if not candidates:
        return judgement
    max_identity = settings.INTAKE_IDENTITY_MAX_DISTANCE
    vectors = {e.pk: e.vector for e in entries if e.vector is not None}
    established = [vectors[e.pk] for e in entries if e.established and e.pk in vectors]
    if established and len(vectors) >= MIN_PHOTOS_FOR_IDENTITY:
        # The client's established photos are the reference: a new batch can't outvote them.
        centre = robust_centre(established, max_distance=max_identity)
        judgement.distances = {pk: float(np.linalg.norm(v - centre)) for pk, v in vectors.items()}
        judgement.different_person = {
            pk: d for pk, d in judgement.distances.items() if pk in candidates and d > max_identity
        }
    elif not established:
        if len(vectors) >= MIN_PHOTOS_FOR_IDENTITY:
            judgement.distances = identity_distances(vectors, max_distance=max_identity)
        judgement.different_person = identity_outliers(vectors, max_distance=max_identity)

    remaining = {e.pk: e for e in entries if e.pk not in judgement.different_person and e.phash}
    pairs = near_duplicates(
        {pk: e.phash for pk, e in remaining.items()}, max_distance=settings.INTAKE_NEAR_DUPLICATE_DISTANCE
    )
    for a, b, _distance in pairs:
        if a in judgement.near_duplicate or b in judgement.near_duplicate:
            continue
        loser = _duplicate_loser(remaining[a], remaining[b])
        if loser is not None:
            judgement.near_duplicate.add(loser.pk)
    return judgement


def _duplicate_loser(a: _Entry, b: _Entry) -> _Entry | None:
    if a.established and b.established:
        return None  # both verdicts stand
    if a.established != b.established:
        return b if a.established else a  # an established photo keeps its verdict
    if a.sharpness != b.sharpness:
        return a if a.sharpness < b.sharpness else b
    return b if b.pk > a.pk else a


def _conclude_round(
    *, photo_set: PhotoSet, photos: dict[int, Photo], candidates: dict[int, PhotoVerdict], judgement: SetJudgement
) -> None:
    """Make the round's verdicts visible together: each candidate accepted, or rejected by the set-level checks
    (its thumbnail kept, no face crop), in one transaction; the established photos' distances refreshed."""
    for pk, verdict in candidates.items():
        verdict.identity_distance = judgement.distances.get(pk)
        if pk in judgement.different_person:
            verdict.accepted, verdict.code, verdict.message = False, "different_person", DIFFERENT_PERSON
        elif pk in judgement.near_duplicate:
            verdict.accepted, verdict.code, verdict.message = False, "near_duplicate", NEAR_DUPLICATE
    written: list[tuple[Photo, PhotoVerdict]] = []
    for pk, verdict in candidates.items():
        try:
            _write_files(photos[pk], verdict)
        except OSError:
            log.exception("photo_validation_store_failed", photo_id=pk)
            verdict.accepted, verdict.code, verdict.message = False, "processing_error", PROCESSING_ERROR
            verdict.thumbnail = verdict.face_crop = None
            photos[pk].thumbnail.name = photos[pk].face_crop.name = ""
        written.append((photos[pk], verdict))
    with transaction.atomic():
        for photo, verdict in written:
            _write_row(photo, verdict)
        for pk, distance in judgement.distances.items():
            if pk not in candidates:
                Photo.objects.filter(pk=pk, photo_set=photo_set, status=Photo.Status.ACCEPTED).update(
                    identity_distance=distance
                )
    for photo, verdict in written:
        log.info("photo_validated", photo_id=photo.pk, accepted=verdict.accepted, code=verdict.code or None)


# --- The whole set --------------------------------------------------------------------------------------------


def validate_photo_set(
    *,
    photo_set: PhotoSet,
    progress: Callable[[float, str], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Validate every PENDING photo of the set (also those added while this runs), round by round, each round's
    verdicts made visible once its set-level checks ran. Returns counts for the job's result."""
    limits, rules = intake_limits(), face_rules()
    report = progress or (lambda pct, message: None)
    check = check_cancelled or (lambda: None)
    checked = rejected = 0
    set_level = {"different_person": 0, "near_duplicate": 0}

    def conclude(photos: dict[int, Photo], candidates: dict[int, PhotoVerdict]) -> None:
        if not candidates:
            return
        judgement = judge_set(photo_set=photo_set, candidates=candidates, limits=limits, rules=rules)
        _conclude_round(photo_set=photo_set, photos=photos, candidates=candidates, judgement=judgement)
        for key, value in judgement.counts().items():
            set_level[key] += value
        candidates.clear()  # embeddings never outlive the validation

    for _round in range(MAX_ROUNDS):
        pending = list(Photo.objects.filter(photo_set=photo_set, status=Photo.Status.PENDING).order_by("pk"))
        if not pending:
            break
        total = checked + len(pending)
        photos = {photo.pk: photo for photo in pending}
        candidates: dict[int, PhotoVerdict] = {}
        # One photo ahead: the next photo is read, decoded and safety-checked in a background thread while
        # this thread runs dlib on the current one (the two cores of a small worker both work).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-prefetch") as pool:
            ahead: Future[Prepared] | None = pool.submit(_prepare_stored, pending[0], limits)
            for index, photo in enumerate(pending):
                try:
                    check()
                except BaseException:
                    if ahead is not None:
                        ahead.cancel()
                    conclude(photos, candidates)  # what this round decided so far stays decided
                    raise
                report(checked * 90 / max(total, 1), f"Checking photo {checked + 1} of {total}")
                assert ahead is not None
                prepared = ahead.result()
                following = pending[index + 1] if index + 1 < len(pending) else None
                ahead = pool.submit(_prepare_stored, following, limits) if following is not None else None
                verdict = _finish_stored(photo, prepared, rules)
                del prepared
                checked += 1
                if verdict.accepted:
                    candidates[photo.pk] = verdict
                else:
                    rejected += 1
        check()
        report(92, "Comparing the photos of the set")
        conclude(photos, candidates)
    accepted = Photo.objects.filter(photo_set=photo_set, status=Photo.Status.ACCEPTED).count()
    report(100, f"{checked} photo{'s' if checked != 1 else ''} checked, {accepted} accepted")
    return {"checked": checked, "rejected": rejected + sum(set_level.values()), "accepted": accepted, **set_level}
