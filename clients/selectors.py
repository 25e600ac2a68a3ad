"""Client intake reads: the client list, a set's photos, and the set's readiness with hints.

Keyword-only, typed, run in the current tenant context."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from clients.models import Client, Photo, PhotoSet

LEVEL_NOT_ENOUGH = "not_enough"
LEVEL_ENOUGH = "enough"
LEVEL_RECOMMENDED = "recommended"

# Rejection reason codes → one hint each (order = priority when several apply).
_HINTS: list[tuple[frozenset[str], str]] = [
    (frozenset({"blurry"}), "Several photos are blurry: hold the camera steady and use more light."),
    (frozenset({"badly_exposed"}), "Some photos are too dark or too bright: use more even light, facing a window."),
    (frozenset({"face_too_small"}), "In some photos the face is too small: come closer or use a higher resolution."),
    (frozenset({"face_cut_off"}), "Keep the whole head in the frame, with a little space around it."),
    (frozenset({"several_faces"}), "Use photos where only the client can be seen: crop out or leave out group shots."),
    (frozenset({"no_face"}), "Use photos where the face is clearly visible, looking towards the camera."),
    (
        frozenset({"different_person"}),
        "Some photos look like a different person: make sure every photo shows the same client.",
    ),
    (frozenset({"near_duplicate"}), "Some photos are almost identical: add photos from other angles instead."),
    (
        frozenset(
            {"unsupported_type", "corrupt", "truncated", "empty", "animated", "too_small", "too_many_pixels"}
            | {"decompression_bomb", "too_large"}
        ),
        "Some files couldn't be used: upload JPEG, PNG, WebP or HEIC photos straight from the camera or phone.",
    ),
]

# How many rejections of one kind make the hint worth showing: one blurry photo among twenty is no pattern,
# but any near-duplicate, different person or group shot is worth a word.
_MIN_COUNT = {"blurry": 2, "badly_exposed": 2}


@dataclass(frozen=True)
class Readiness:
    accepted: int
    rejected: int
    pending: int
    minimum: int
    recommended: int
    percent: int
    level: str
    can_train: bool
    hints: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.accepted + self.rejected + self.pending

    @property
    def missing(self) -> int:
        """Accepted photos still needed to reach the minimum."""
        return max(0, self.minimum - self.accepted)


def readiness(*, photo_set: PhotoSet) -> Readiness:
    """How ready the set is to train a digital double: counts, a 0-100 meter (100 = the recommended number of
    accepted photos), a level, whether training may start, and hints derived from the rejection reasons and the
    accepted set. Two queries."""
    minimum, recommended = settings.INTAKE_MIN_PHOTOS, max(settings.INTAKE_RECOMMENDED_PHOTOS, 1)
    rows = (
        Photo.objects.filter(photo_set=photo_set)
        .values_list("status", "reason_code")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_status = {Photo.Status.ACCEPTED: 0, Photo.Status.REJECTED: 0, Photo.Status.PENDING: 0}
    by_reason: dict[str, int] = {}
    for status, code, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        if status == Photo.Status.REJECTED and code:
            by_reason[code] = by_reason.get(code, 0) + n
    accepted, rejected, pending = (
        by_status[Photo.Status.ACCEPTED],
        by_status[Photo.Status.REJECTED],
        by_status[Photo.Status.PENDING],
    )
    if accepted < minimum:
        level = LEVEL_NOT_ENOUGH
    elif accepted < recommended:
        level = LEVEL_ENOUGH
    else:
        level = LEVEL_RECOMMENDED
    percent = min(100, round(accepted * 100 / recommended))
    is_open = photo_set.status == PhotoSet.Status.COLLECTING
    can_train = is_open and accepted >= minimum and pending == 0

    hints: list[str] = []
    if is_open:
        if pending:
            hints.append(f"{pending} photo{'s are' if pending != 1 else ' is'} still being checked.")
        if accepted < minimum:
            need = minimum - accepted
            hints.append(
                f"Add at least {need} more photo{'s' if need != 1 else ''} to reach the minimum of {minimum} "
                f"(the best results come with {recommended})."
            )
        elif accepted < recommended:
            need = recommended - accepted
            hints.append(
                f"Ready to train. For the best likeness add {need} more photo{'s' if need != 1 else ''} "
                "from other angles and with other expressions."
            )
        for codes, text in _HINTS:
            count = sum(by_reason.get(code, 0) for code in codes)
            threshold = max((_MIN_COUNT.get(code, 1) for code in codes), default=1)
            if count >= threshold:
                hints.append(text)
    return Readiness(
        accepted=accepted,
        rejected=rejected,
        pending=pending,
        minimum=minimum,
        recommended=recommended,
        percent=percent,
        level=level,
        can_train=can_train,
        hints=hints,
    )


def photo_set_photos(*, photo_set: PhotoSet) -> QuerySet[Photo]:
    """The set's photos in upload order."""
    return Photo.objects.filter(photo_set=photo_set).order_by("uploaded_at", "id")


#: The list's order, served by the index client_studio_name (studio, name, id); the id breaks ties.
CLIENT_LIST_ORDER = ("name", "id")


def clients_list(*, search: str = "") -> QuerySet[Client]:
    """The studio's clients by name, each with `photo_set_count`; with `search`, those whose name, email or
    phone contains it (any case).

    The count is a correlated subquery, not a join and GROUP BY: the database limits the page first (an index
    range in the list's order, jobs.keyset) and counts photo sets for the page's rows only, so a page costs the
    same with 50 or 50,000 clients. The search walks the same index in name order and stops once a page of
    matches is found (no trigram index: row-level security keeps LIKE, which is not leakproof, out of index
    conditions; see migration 0003)."""
    photo_sets = (
        PhotoSet.objects.filter(client_id=OuterRef("pk")).order_by().values("client_id").annotate(n=Count("id"))
    )
    clients = Client.objects.annotate(
        photo_set_count=Coalesce(Subquery(photo_sets.values("n")[:1], output_field=IntegerField()), 0)
    )
    if search:
        clients = clients.filter(Q(name__icontains=search) | Q(email__icontains=search) | Q(phone__icontains=search))
    return clients.order_by(*CLIENT_LIST_ORDER)


def client_photo_sets(*, client: Client) -> QuerySet[PhotoSet]:
    """A client's photo sets, newest first, each with `accepted_count` and `photo_count`."""
    return (
        PhotoSet.objects.filter(client=client)
        .annotate(
            photo_count=Count("photos"),
            accepted_count=Count("photos", filter=Q(photos__status=Photo.Status.ACCEPTED)),
        )
        .order_by("-created_at", "-id")
    )
