"""A studio's worth of photography for the dashboard tests (no tests here): `build_clients(tenant, n)` gives each of
`n` new clients one object in every state the dashboard reports, with bulk_create (a few dozen queries whatever
`n`), so that the page can be measured at 1 and at 1,000 clients. Every count of "Needs you now" is then `n` per
call, and every source of "Recent activity" has rows.

Per client (tests set INTAKE_MIN_PHOTOS to 2):
- a set collecting with one accepted photo, started 12 days ago: waiting for the client's photos;
- a set collecting with two accepted photos and no double: ready for review (training);
- a validation job that succeeded (photos uploaded and checked);
- a ready double (trained) and, after it, a double whose training job failed;
- a finished run of the ready double with two picks in no gallery: a run to turn into a gallery;
- a second finished run whose picks are in a gallery shared three days ago, never opened, with one favorite not
  bought;
- a second gallery, opened, with two paid orders: one delivered (its entitlement is active), one whose portrait's
  entitlement was revoked (can't be downloaded: to refund).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing.models import CreditEntry, Order, OrderItem, PriceSheet
from clients.models import Client, Photo, PhotoSet
from clients.services import VALIDATE_SET_KIND
from galleries.models import Entitlement, Gallery, GalleryEvent, GalleryPortrait
from generation.models import DigitalDouble, Portrait, RenderRun, RenderRunItem
from jobs.models import Job
from tenants.context import tenant_context

MIN_PHOTOS = 2


def _double(client: Client, status: str, **fields: Any) -> DigitalDouble:
    return DigitalDouble(
        client=client,
        base_model="tiny-sd15",
        family="sd15",
        is_demo=True,
        trigger="ohwx",
        status=status,
        **fields,
    )


def build_clients(tenant: Any, count: int, *, prefix: str = "Client", start: int = 0) -> list[Client]:
    """`count` clients of `tenant`'s studio named "<prefix> <i>", each with the objects above."""
    now = timezone.now()
    with tenant_context(tenant.studio):
        PriceSheet.objects.get_or_create(defaults={"currency": "eur"})
        clients = Client.objects.bulk_create(
            [Client(name=f"{prefix} {start + i:04d}", email=f"c{start + i}@example.com") for i in range(count)]
        )
        retention = now + timedelta(days=30)
        waiting = PhotoSet.objects.bulk_create([PhotoSet(client=c, retention_until=retention) for c in clients])
        PhotoSet.objects.filter(pk__in=[s.pk for s in waiting]).update(created_at=now - timedelta(days=12))
        ready = PhotoSet.objects.bulk_create([PhotoSet(client=c, retention_until=retention) for c in clients])
        accepted = Photo.Status.ACCEPTED
        Photo.objects.bulk_create(
            [Photo(photo_set=s, status=accepted) for s in waiting]
            + [Photo(photo_set=s, status=accepted) for s in ready for _ in range(MIN_PHOTOS)]
        )
        Job.objects.bulk_create(
            [
                Job(
                    kind=VALIDATE_SET_KIND,
                    state=Job.State.SUCCEEDED,
                    payload={"photo_set_id": s.pk},
                    result={"checked": 2, "accepted": 2, "rejected": 0},
                    finished_at=now,
                )
                for s in ready
            ]
        )

        doubles = DigitalDouble.objects.bulk_create(
            [_double(c, DigitalDouble.Status.READY, trained_at=now - timedelta(days=5)) for c in clients]
        )
        train_jobs = Job.objects.bulk_create(
            [Job(kind="double.train", state=Job.State.FAILED, error="Out of memory", finished_at=now) for _ in clients]
        )
        failed = [_double(c, DigitalDouble.Status.FAILED, job=j) for c, j in zip(clients, train_jobs, strict=True)]
        DigitalDouble.objects.bulk_create(failed)
        DigitalDouble.objects.filter(pk__in=[d.pk for d in failed]).update(created_at=now + timedelta(seconds=1))

        runs = RenderRun.objects.bulk_create(
            [RenderRun(double=d, images=2) for d in doubles] + [RenderRun(double=d, images=2) for d in doubles]
        )
        render_jobs = Job.objects.bulk_create(
            [Job(kind="portraits.render", state=Job.State.SUCCEEDED, finished_at=now) for _ in runs]
        )
        RenderRunItem.objects.bulk_create(
            [RenderRunItem(run=r, images=2, job=j) for r, j in zip(runs, render_jobs, strict=True)]
        )
        portraits = Portrait.objects.bulk_create(
            [Portrait(double=r.double, run=r, is_pick=True, rank=rank) for r in runs for rank in (1, 2)]
        )
        shown_runs = runs[count:]  # the second run of each double goes into the galleries
        by_run: dict[int, list[Portrait]] = {}
        for p in portraits:
            by_run.setdefault(p.run_id, []).append(p)

        three_days_ago = now - timedelta(days=3)
        unopened = Gallery.objects.bulk_create(
            [Gallery(client=r.double.client, title="Summer", run=r, shared_at=three_days_ago) for r in shown_runs]
        )
        opened = Gallery.objects.bulk_create(
            [Gallery(client=r.double.client, title="Studio", shared_at=now - timedelta(days=4)) for r in shown_runs]
        )
        entries = []
        for gallery, run in zip(unopened, shown_runs, strict=True):
            first, second = by_run[run.pk]
            entries += [
                GalleryPortrait(gallery=gallery, portrait=first, position=0, is_favorite=True, favorited_at=now),
                GalleryPortrait(gallery=gallery, portrait=second, position=1),
            ]
        for gallery, run in zip(opened, shown_runs, strict=True):
            entries += [GalleryPortrait(gallery=gallery, portrait=p, position=i) for i, p in enumerate(by_run[run.pk])]
        GalleryPortrait.objects.bulk_create(entries)
        GalleryEvent.objects.bulk_create([GalleryEvent(gallery=g, kind=GalleryEvent.Kind.VIEW) for g in opened])

        paid = dict(status=Order.Status.PAID, currency="eur", amount=Decimal("9.90"), paid_at=now)
        orders = Order.objects.bulk_create([Order(gallery=g, **paid) for g in opened for _ in (0, 1)])
        items, entitlements = [], []
        for i, order in enumerate(orders):
            portrait = by_run[shown_runs[i // 2].pk][i % 2]
            items.append(OrderItem(order=order, portrait=portrait, unit_price=Decimal("9.90")))
            entitlements.append(
                Entitlement(
                    gallery=order.gallery,
                    portrait=portrait,
                    source=Entitlement.Source.ORDER,
                    order_ref=str(order.pk),
                    revoked_at=now if i % 2 else None,  # every second order's download was revoked
                )
            )
        OrderItem.objects.bulk_create(items)
        Entitlement.objects.bulk_create(entitlements)
        CreditEntry.objects.bulk_create(
            [CreditEntry(kind=CreditEntry.Kind.GRANT, amount=100, reference=f"grant-{prefix}-{start}")]
            + [CreditEntry(kind=CreditEntry.Kind.RESERVE, amount=-2, job=j) for j in render_jobs]
        )
    return clients


# --- Reading the page -----------------------------------------------------------------------------------------


def dashboard_page(client: Any, tenant: Any) -> str:
    response = client.get(f"{tenant.prefix}/")
    assert response.status_code == 200
    return response.content.decode()


def action_items(body: str) -> dict[str, str]:
    """The "Needs you now" items of a dashboard page, by key: each item's HTML, in the page's order."""
    start = body.find('id="needs-you-now"')
    section = body[start : body.index("</section>", start)]
    parts = section.split('<li class="action-item" data-item="')[1:]
    return {part[: part.index('"')]: part for part in parts}


def activity(body: str) -> list[str]:
    """The "Recent activity" entries of a dashboard page, as text with their links, newest first."""
    start = body.find('id="recent-activity"')
    section = body[start : body.index("</section>", start)]
    return [" ".join(entry.split()) for entry in section.split("<li>")[1:]]
