"""The clients list at 100,000 clients (issue 16): its page query, first page and a deep one, is a range of the
index client_studio_name read in the list's order, and photo sets are counted for the page's rows only (a
subquery run once per row shown, through an index of photo sets), never for the whole studio before the LIMIT. A
search for a rare term reads the trigram index (clients.ClientSearchTerm, clientsearchterm_term) and the few
candidate clients by primary key; a term in no client runs no page query at all; a common term (every trigram in
thousands of clients) is left to the planner, measured, not asserted (under row-level security it can't estimate
LIKE and may read the whole studio rather than walk client_studio_name to a page of matches). PostgreSQL only
(EXPLAIN), as the application role with row-level security on, with a big neighbour studio in the same tables.

Run with -s to see the measured lines (EXPLAIN's execution time and the whole request's time)."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from clients import selectors
from jobs import keyset
from tenants.context import tenant_context
from tests.jobs.scale import analyze_as_owner, explain, get_and_capture, nodes, scans_of, summary, the_query

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLIENTS = 100_000
NEIGHBOUR_CLIENTS = 5_000  # a big neighbour in the same tables and indexes (its size only slows the setup)

INSERT_CLIENTS = """
INSERT INTO clients_client (studio_id, name, email, phone, notes, status, created_at, consent_method)
SELECT %s, initcap(substr(md5(g::text), 1, 7)) || ' ' || initcap(substr(md5(g::text), 8, 9)),
       'client' || g || '@mail.example', '+44 7700 ' || lpad(g::text, 6, '0'), '', 'active', now(), ''
FROM generate_series(1, %s) AS g
"""
# A photo set for every other client, three for every tenth.
INSERT_SETS = """
INSERT INTO clients_photoset (studio_id, client_id, status, created_at, retention_until)
SELECT c.studio_id, c.id, 'collecting', now(), now() + interval '30 days'
FROM clients_client c, generate_series(1, 3) AS k
WHERE c.studio_id = %s AND (k = 1 AND c.id %% 2 = 0 OR c.id %% 10 = 0)
"""


def _insert(studio, n: int) -> None:  # noqa: ANN001
    with tenant_context(studio), connection.cursor() as cursor:  # as the app role: RLS checks every row
        cursor.execute(INSERT_CLIENTS, [studio.pk, n])
        cursor.execute(INSERT_SETS, [studio.pk])


def _assert_page_plan(plan: dict, *, most_rows: int, index: str) -> None:
    """clients_client is read through `index`, about a page of rows; photo sets are read through their index, once
    per row shown; no Sort of more than a page."""
    clients = scans_of(plan, "clients_client")
    assert clients, summary(plan)
    for scan in clients:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), summary(plan)
        used = [scan["Index Name"]] if "Index Name" in scan else _bitmap_indexes(scan)
        assert set(used) == {index}, summary(plan)
        assert scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0) <= most_rows, summary(plan)
    for scan in scans_of(plan, "clients_photoset"):
        assert scan["Node Type"] != "Seq Scan", summary(plan)
        assert scan["Actual Loops"] <= most_rows, summary(plan)
    for node in nodes(plan["Plan"]):
        if "Sort" in node["Node Type"]:
            assert all(child["Actual Rows"] <= most_rows for child in node["Plans"]), summary(plan)


def _bitmap_indexes(scan: dict) -> list[str]:
    return [n["Index Name"] for n in nodes(scan) if n["Node Type"] == "Bitmap Index Scan"]


def test_the_clients_list_reads_one_index_range_per_page_at_100k_clients(client_a, two_tenants):
    a, b = two_tenants
    _insert(b.studio, NEIGHBOUR_CLIENTS)
    _insert(a.studio, CLIENTS)
    analyze_as_owner("clients_client", "clients_photoset")
    analyze_as_owner("clients_clientsearchterm", vacuum=True)
    with tenant_context(a.studio):
        deep = selectors.clients_list().values_list("name", "id")[CLIENTS * 9 // 10]
        target = selectors.clients_list().filter(email="client12345@mail.example").get()
    deep_cursor = keyset.encode_cursor(deep, before=False)
    lines, counts = [], []
    for label, url, index in (
        ("page 1", f"{a.prefix}/clients/", "client_studio_name"),
        ("deep page", f"{a.prefix}/clients/?cursor={deep_cursor}", "client_studio_name"),
        ("API page 1", f"{a.prefix}/api/clients/", "client_studio_name"),
        ("API deep page", f"{a.prefix}/api/clients/?cursor={deep_cursor}", "client_studio_name"),
        ("search, common term", f"{a.prefix}/clients/?q=mail.exa", None),
        ("search, rare term (one client)", f"{a.prefix}/clients/?q=client12345@", None),
        ("search, no match", f"{a.prefix}/clients/?q=zzzz", None),
    ):
        get_and_capture(client_a, url)  # warm
        response, sqls, elapsed = get_and_capture(client_a, url)
        counts.append((label, len(sqls)))
        probes = [sql for sql in sqls if "client_search_trigrams(" in sql]  # the search's trigram probe
        assert all(re.search(r"\bLIMIT\b", sql) for sql in probes), probes  # its counts stop at a cap
        # No count of the list; the search's candidates count each client's matching trigrams (GROUP BY client_id).
        listed = [sql.upper().replace("GROUP BY CLIENT_ID HAVING COUNT(*)", "") for sql in sqls if sql not in probes]
        assert not any("COUNT(*)" in sql for sql in listed), label
        if label == "search, no match":  # a trigram in no client: the list knows it before any page query
            assert not [sql for sql in sqls if 'FROM "clients_client"' in sql], sqls
            lines.append(f"{label}: no page query, request {elapsed:.1f} ms")
            continue
        with tenant_context(a.studio):
            plan = explain(the_query(sqls, "clients_client"))
        if index:
            _assert_page_plan(plan, most_rows=60, index=index)
        for scan in scans_of(plan, "clients_photoset"):  # even a search counts sets for the page's rows only
            assert scan["Node Type"] != "Seq Scan" and scan["Actual Loops"] <= 60, summary(plan)
        lines.append(f"{label}: SQL {plan['Execution Time']:.2f} ms, request {elapsed:.1f} ms [{summary(plan)}]")
        if label.startswith("search, rare"):
            assert f"/clients/{target.pk}/" in response.content.decode(), label
            terms = scans_of(plan, "clients_clientsearchterm")
            assert terms, summary(plan)
            for scan in terms:
                assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), summary(plan)
                used = [scan["Index Name"]] if "Index Name" in scan else _bitmap_indexes(scan)
                assert used == ["clientsearchterm_term"], summary(plan)
            # At most SEARCH_TRIGRAMS_USED index ranges of at most SEARCH_SELECTIVE_CLIENTS entries each.
            bound = selectors.SEARCH_TRIGRAMS_USED * selectors.SEARCH_SELECTIVE_CLIENTS
            assert sum(t["Actual Rows"] * t["Actual Loops"] for t in terms) <= bound, summary(plan)
            for scan in scans_of(plan, "clients_client"):
                assert scan["Node Type"] != "Seq Scan" and scan["Actual Rows"] * scan["Actual Loops"] <= 60, summary(
                    plan
                )
    pages = [n for label, n in counts if not label.startswith(("API", "search"))]
    assert len(set(pages)) == 1 and counts[2][1] == counts[3][1], counts
    with tenant_context(a.studio):  # what the page cost before: every client's sets counted before the LIMIT
        grouped = explain(
            "SELECT c.id, COUNT(s.id) FROM clients_client c LEFT JOIN clients_photoset s ON s.client_id = c.id "
            f"WHERE c.studio_id = {int(a.studio.pk)} GROUP BY c.id ORDER BY c.name, c.id LIMIT 26"
        )
        count = explain(f"SELECT COUNT(*) FROM clients_client WHERE studio_id = {int(a.studio.pk)}")
    before = grouped["Execution Time"], count["Execution Time"]
    lines.append("before: the grouped page {:.1f} ms, COUNT(*) {:.1f} ms".format(*before))
    print(f"\nclients list at {CLIENTS:,} clients (+{NEIGHBOUR_CLIENTS:,} a neighbour's):\n  " + "\n  ".join(lines))


def test_the_page_counts_each_clients_photo_sets(client_a, tenant_a):
    _insert(tenant_a.studio, 40)
    with tenant_context(tenant_a.studio):
        rows = {c.id: c.photo_set_count for c in selectors.clients_list()}
        with connection.cursor() as cursor:
            cursor.execute("SELECT client_id, COUNT(*) FROM clients_photoset GROUP BY client_id")
            truth = dict(cursor.fetchall())
    assert rows == {pk: truth.get(pk, 0) for pk in rows} and set(rows.values()) == {0, 1, 3}
