"""Client intake reads: the client list, a set's photos, and the set's readiness with hints.

Keyword-only, typed, run in the current tenant context."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import BigIntegerField, CharField, Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils.translation import gettext_lazy, ngettext

from clients.models import Client, Photo, PhotoSet
from clients.services import VALIDATE_SET_KIND
from jobs.models import Job
from tenants.context import current_studio_id

LEVEL_NOT_ENOUGH = "not_enough"
LEVEL_ENOUGH = "enough"
LEVEL_RECOMMENDED = "recommended"

# Rejection reason codes → one hint each (order = priority when several apply).
_HINTS: list[tuple[frozenset[str], object]] = [
    (frozenset({"blurry"}), gettext_lazy("Several photos are blurry: hold the camera steady and use more light.")),
    (
        frozenset({"badly_exposed"}),
        gettext_lazy("Some photos are too dark or too bright: use more even light, facing a window."),
    ),
    (
        frozenset({"face_too_small"}),
        gettext_lazy("In some photos the face is too small: come closer or use a higher resolution."),
    ),
    (frozenset({"face_cut_off"}), gettext_lazy("Keep the whole head in the frame, with a little space around it.")),
    (
        frozenset({"several_faces"}),
        gettext_lazy("Use photos where only the client can be seen: crop out or leave out group shots."),
    ),
    (frozenset({"no_face"}), gettext_lazy("Use photos where the face is clearly visible, looking towards the camera.")),
    (
        frozenset({"different_person"}),
        gettext_lazy("Some photos look like a different person: make sure every photo shows the same client."),
    ),
    (
        frozenset({"near_duplicate"}),
        gettext_lazy("Some photos are almost identical: add photos from other angles instead."),
    ),
    (
        frozenset(
            {"unsupported_type", "corrupt", "truncated", "empty", "animated", "too_small", "too_many_pixels"}
            | {"decompression_bomb", "too_large"}
        ),
        gettext_lazy(
            "Some files couldn't be used: upload JPEG, PNG, WebP or HEIC photos straight from the camera or phone."
        ),
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
            hints.append(
                ngettext(
                    "%(count)s photo is still being checked.", "%(count)s photos are still being checked.", pending
                )
                % {"count": pending}
            )
        if accepted < minimum:
            need = minimum - accepted
            hints.append(
                ngettext(
                    "Add at least %(need)s more photo to reach the minimum of %(minimum)s (the best results come "
                    "with %(recommended)s).",
                    "Add at least %(need)s more photos to reach the minimum of %(minimum)s (the best results come "
                    "with %(recommended)s).",
                    need,
                )
                % {"need": need, "minimum": minimum, "recommended": recommended}
            )
        elif accepted < recommended:
            need = recommended - accepted
            hints.append(
                ngettext(
                    "Ready to train. For the best likeness add %(need)s more photo from other angles and with other "
                    "expressions.",
                    "Ready to train. For the best likeness add %(need)s more photos from other angles and with other "
                    "expressions.",
                    need,
                )
                % {"need": need}
            )
        for codes, text in _HINTS:
            count = sum(by_reason.get(code, 0) for code in codes)
            threshold = max((_MIN_COUNT.get(code, 1) for code in codes), default=1)
            if count >= threshold:
                hints.append(str(text))
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


# The search's trigram index (clients.ClientSearchTerm, PostgreSQL): a trigram found in at most this many of the
# studio's clients narrows the search; the probe reads at most this many index entries per trigram of the query.
SEARCH_SELECTIVE_CLIENTS = 2000
# At most this many of the query's rarest selective trigrams look the candidates up (each adds its index entries).
SEARCH_TRIGRAMS_USED = 3

# At most this many of the query's trigrams are probed (spread over them): a long query costs no more to probe.
SEARCH_TRIGRAMS_PROBED = 8

# For the probed trigrams of the query, in how many of the studio's clients each appears, counted up to a cap: an
# index range read with `=` (leakproof: allowed as an index condition under row-level security), stopped at the
# cap (an index-only scan where autovacuum keeps the table's visibility map).
_PROBE_SQL = """
WITH q AS (SELECT client_search_trigrams(%s) AS a)
SELECT t, (SELECT count(*) FROM (
    SELECT 1 FROM clients_clientsearchterm AS s WHERE s.studio_id = %s AND s.term = t LIMIT %s) AS capped)
FROM q, unnest(q.a) WITH ORDINALITY AS u(t, n)
WHERE (n - 1) %% greatest(1, (cardinality(q.a) + %s - 1) / %s) = 0
"""
_CANDIDATES_SQL = (
    "SELECT client_id FROM clients_clientsearchterm WHERE studio_id = %s AND term = ANY(%s) "
    "GROUP BY client_id HAVING count(*) = %s"
)


def search_trigrams(search: str) -> list[str] | None:
    """The trigrams of `search` that narrow the clients search (the rarest, each in at most
    SEARCH_SELECTIVE_CLIENTS of the studio's clients), [] when one of them is in no client at all (nothing can
    match), or None when the index can't help: not PostgreSQL, no studio in the context, a query shorter than
    three characters, or only common trigrams (then the matches are many and the list's own index finds a page of
    them soonest). One query, reading at most SEARCH_SELECTIVE_CLIENTS + 1 index entries for each of at most
    SEARCH_TRIGRAMS_PROBED trigrams of the query."""
    studio_id = current_studio_id()
    if connection.vendor != "postgresql" or len(search) < 3 or studio_id is None:
        return None
    with connection.cursor() as cursor:
        probed = SEARCH_TRIGRAMS_PROBED
        cursor.execute(_PROBE_SQL, [search, studio_id, SEARCH_SELECTIVE_CLIENTS + 1, probed, probed])
        counts = sorted((n, t) for t, n in cursor.fetchall())
    if not counts:
        return None
    if counts[0][0] == 0:
        return []
    rare = [t for n, t in counts if n <= SEARCH_SELECTIVE_CLIENTS][:SEARCH_TRIGRAMS_USED]
    return rare or None


def clients_list(*, search: str = "") -> QuerySet[Client]:
    """The studio's clients by name, each with `photo_set_count`; with `search`, those whose name, email or
    phone contains it (any case).

    The count is a correlated subquery, not a join and GROUP BY: the database limits the page first (an index
    range in the list's order, jobs.keyset) and counts photo sets for the page's rows only, so a page costs the
    same with 50 or 50,000 clients.

    The search, on PostgreSQL, first asks the trigram index (clients.ClientSearchTerm, migration 0004) which of
    the query's trigrams are rare (:func:`search_trigrams`): the clients having all of those (a few index ranges,
    bounded whatever the studio's size) are the only candidates, checked with LIKE. When every trigram is common
    (say "mail"), matches are many: the search walks the list's index in name order and stops once a page of
    matches is found. Under three characters, and on SQLite, it walks the list (the whole studio when matches
    are rare)."""
    photo_sets = (
        PhotoSet.objects.filter(client_id=OuterRef("pk")).order_by().values("client_id").annotate(n=Count("id"))
    )
    clients = Client.objects.annotate(
        photo_set_count=Coalesce(Subquery(photo_sets.values("n")[:1], output_field=IntegerField()), 0)
    )
    search = search.strip()
    if search:
        trigrams = search_trigrams(search)
        if trigrams == []:
            return clients.none()
        if trigrams:
            clients = clients.filter(
                pk__in=RawSQL(_CANDIDATES_SQL, [current_studio_id(), trigrams, len(trigrams)])  # noqa: S611
            )
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


# --- The dashboard's reads (clients/dashboard.py, generation/dashboard.py) --------------------------------------


def _photo_count(status: str) -> Coalesce:
    """The number of the set's photos with `status`: a correlated subquery on the index photo_studio_set_status
    (no join, no grouping of the sets)."""
    counted = (
        Photo.objects.filter(photo_set=OuterRef("pk"), status=status)
        .order_by()
        .values("photo_set")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def open_photo_sets() -> QuerySet[PhotoSet]:
    """The sets of active clients still collecting photos, each with `accepted_count` and `pending_count`: what the
    dashboard names them by (when, and the client's name) and nothing more."""
    return (
        PhotoSet.objects.filter(status=PhotoSet.Status.COLLECTING, client__status=Client.Status.ACTIVE)
        .select_related("client")
        .only("id", "client_id", "created_at", "client__name")
        .annotate(accepted_count=_photo_count(Photo.Status.ACCEPTED), pending_count=_photo_count(Photo.Status.PENDING))
    )


def sets_waiting_for_photos() -> QuerySet[PhotoSet]:
    """Open sets with fewer accepted photos than training needs and none being checked: they wait for the
    client's (or the studio's) next photos."""
    return open_photo_sets().filter(accepted_count__lt=settings.INTAKE_MIN_PHOTOS, pending_count=0)


def sets_ready_to_train() -> QuerySet[PhotoSet]:
    """Open sets that readiness lets train (enough accepted photos, none being checked): for staff to review
    and start the training (generation leaves out those a digital double was already started from)."""
    return open_photo_sets().filter(accepted_count__gte=settings.INTAKE_MIN_PHOTOS, pending_count=0)


def recent_clients(*, limit: int) -> list[Client]:
    """The clients added last (their name and when), newest first: the index client_studio_created."""
    return list(Client.objects.only("id", "name", "created_at").order_by("-created_at", "-id")[:limit])


def recent_validations(*, limit: int) -> list[Job]:
    """The latest photo checks (validation jobs: photos uploaded, then checked), newest first, each with the
    `photo_set_ref` (from its payload), `client_ref` and `client_name` of its set (None once the set is gone):
    one query, the client read by correlated subqueries for the `limit` rows only."""
    of_set = PhotoSet.objects.filter(pk=OuterRef("photo_set_ref"))
    return list(
        Job.objects.filter(kind=VALIDATE_SET_KIND)
        .only("id", "state", "result", "created_at", "finished_at")
        .annotate(photo_set_ref=Cast(KT("payload__photo_set_id"), output_field=BigIntegerField()))
        .annotate(
            client_ref=Subquery(of_set.values("client_id")[:1]),
            client_name=Subquery(of_set.values("client__name")[:1], output_field=CharField()),
        )
        .order_by("-created_at", "-id")[:limit]
    )
