"""The jobs list at 100,000 jobs (issue 16): its page query, first page and a deep one, is a range of the index
job_studio_created read in the list's order (no Seq Scan, no Sort), reading about one page of rows whatever the
depth; the page and the API run the same number of queries at any depth. PostgreSQL only (EXPLAIN), as the
application role with row-level security on, with a big neighbour studio in the same table.

Run with -s to see the measured lines (EXPLAIN's execution time and the whole request's time)."""

from __future__ import annotations

import pytest
from django.db import connection

from jobs import keyset, selectors
from tenants.context import tenant_context
from tests.jobs.scale import analyze_as_owner, explain, get_and_capture, nodes, scans_of, summary, the_query

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOBS = 100_000
NEIGHBOUR_JOBS = 30_000

INSERT_JOBS = """
INSERT INTO generation_job (studio_id, kind, state, progress, progress_message, attempts, max_attempts, error,
                            payload, cluster, cancel_requested, created_at, updated_at)
SELECT %s, 'demo.countdown', 'succeeded', 100, '', 1, 3, '', '{}'::jsonb, 'default', false,
       now() - (g / 3) * interval '1 second', now()   -- three jobs share each created_at: ties
FROM generate_series(1, %s) AS g
"""


def _insert_jobs(studio, n: int) -> None:  # noqa: ANN001
    with tenant_context(studio), connection.cursor() as cursor:  # as the app role: RLS checks every row
        cursor.execute(INSERT_JOBS, [studio.pk, n])


def _assert_index_range(plan: dict, *, most_rows: int) -> None:
    """The job table is read through job_studio_created only, about a page of rows (never the studio's 100,000),
    and any Sort sorts no more than that (the planner may pick a bitmap read and a sort of a few rows at the end
    of the list, where it knows few rows are left)."""
    scans = scans_of(plan, "generation_job")
    assert scans, summary(plan)
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), summary(plan)
        indexes = [scan.get("Index Name")] if "Index Name" in scan else _bitmap_indexes(scan)
        assert indexes and set(indexes) == {"job_studio_created"}, summary(plan)
        assert scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0) <= most_rows, summary(plan)
    for node in nodes(plan["Plan"]):
        if "Sort" in node["Node Type"]:
            assert all(child["Actual Rows"] <= most_rows for child in node["Plans"]), summary(plan)


def _bitmap_indexes(scan: dict) -> list[str]:
    return [n["Index Name"] for n in nodes(scan) if n["Node Type"] == "Bitmap Index Scan"]


def test_the_jobs_list_reads_one_index_range_per_page_at_100k_jobs(client_a, two_tenants):
    a, b = two_tenants
    _insert_jobs(b.studio, NEIGHBOUR_JOBS)
    _insert_jobs(a.studio, JOBS)
    analyze_as_owner("generation_job")
    with tenant_context(a.studio):
        deep = selectors.job_list().values_list("created_at", "id")[JOBS * 9 // 10]  # page 3,600 of 4,000
        last = selectors.job_list().values_list("created_at", "id")[JOBS - 20]  # the last page
    deep_cursor = keyset.encode_cursor(deep, before=False)
    back_cursor = keyset.encode_cursor(deep, before=True)
    last_cursor = keyset.encode_cursor(last, before=False)

    lines, counts = [], []
    for label, url in (
        ("page 1", f"{a.prefix}/jobs/"),
        ("deep page", f"{a.prefix}/jobs/?cursor={deep_cursor}"),
        ("deep page, newer", f"{a.prefix}/jobs/?cursor={back_cursor}"),
        ("last page", f"{a.prefix}/jobs/?cursor={last_cursor}"),
        ("API page 1", f"{a.prefix}/api/jobs/"),
        ("API deep page", f"{a.prefix}/api/jobs/?cursor={deep_cursor}"),
    ):
        get_and_capture(client_a, url)  # warm
        response, sqls, elapsed = get_and_capture(client_a, url)
        counts.append((label.startswith("API"), len(sqls)))
        assert not any("COUNT(" in sql.upper() for sql in sqls), label
        with tenant_context(a.studio):
            plan = explain(the_query(sqls, "generation_job"))
        _assert_index_range(plan, most_rows=60)  # 26 rows a page (51 for the API's 50), plus ties
        lines.append(f"{label}: SQL {plan['Execution Time']:.2f} ms, request {elapsed:.1f} ms [{summary(plan)}]")
        if label == "deep page":
            html = response.content.decode()
            assert 'rel="prev">Newer' in html and 'rel="next">Older' in html
    assert len({n for api, n in counts if not api}) == 1 and len({n for api, n in counts if api}) == 1, counts
    with tenant_context(a.studio):  # what the pages cost before: an exact count, and OFFSET to the same depth
        offset = explain(str(selectors.job_list()[JOBS * 9 // 10 : JOBS * 9 // 10 + 25].query))
        count = explain(f"SELECT COUNT(*) FROM generation_job WHERE studio_id = {int(a.studio.pk)}")
    lines.append(
        f"before: OFFSET to the deep page {offset['Execution Time']:.1f} ms, COUNT(*) {count['Execution Time']:.1f} ms"
    )
    print(f"\njobs list at {JOBS:,} jobs (+{NEIGHBOUR_JOBS:,} a neighbour's):\n  " + "\n  ".join(lines))
