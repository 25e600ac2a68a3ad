"""Helpers for the PostgreSQL tests of the lists at scale (tests/jobs/test_list_scale.py,
tests/clients/test_list_scale.py): statistics taken as the owner role, and EXPLAIN of the very query a page ran."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import environ
import psycopg
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext


def analyze_as_owner(*tables: str, vacuum: bool = False) -> None:
    """ANALYZE needs the table's owner (the application role the suite runs as is not): the planner then sees the
    rows the test inserted, as autovacuum would have it see them in production. `vacuum`: VACUUM ANALYZE, also as
    autovacuum would (the visibility map that lets an index-only scan skip the table's pages)."""
    owner = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        dbname=settings["NAME"],
        user=owner["USER"],
        password=owner.get("PASSWORD") or None,
        autocommit=True,
    ) as owner_connection:
        for table in tables:
            owner_connection.execute(f'{"VACUUM ANALYZE" if vacuum else "ANALYZE"} "{table}"')


def get_and_capture(client: HttpClient, url: str) -> tuple[Any, list[str], float]:
    """The response, the SQL the request ran, and its time in ms."""
    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200
    return response, [q["sql"] for q in ctx.captured_queries], elapsed


def the_query(sqls: list[str], table: str) -> str:
    """The one query of the request that reads `table` with a LIMIT (the page's query)."""
    found = [sql for sql in sqls if f'FROM "{table}"' in sql and re.search(r"\bLIMIT\b", sql)]
    assert len(found) == 1, found
    return found[0]


def explain(sql: str) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, FORMAT JSON) of `sql`, run in the caller's tenant context (RLS applies as in the page)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans_of(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return [node for node in nodes(plan["Plan"]) if node.get("Relation Name") == table]


def summary(plan: dict[str, Any]) -> str:
    """One line per node: its type, index, rows and loops (for the assertion messages and the docs)."""
    return "; ".join(
        f"{n['Node Type']}{' ' + n['Index Name'] if 'Index Name' in n else ''}"
        f"{' on ' + n['Relation Name'] if 'Relation Name' in n else ''} rows={n.get('Actual Rows')}"
        f" loops={n.get('Actual Loops')}"
        for n in nodes(plan["Plan"])
    )
