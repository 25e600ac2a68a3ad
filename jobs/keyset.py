"""Keyset (cursor) pagination for growing lists: the jobs list, the clients list, and their APIs.

A page is found by where it starts, not by how many rows lie before it: the next page is the rows that sort after
the last row shown (`WHERE (created_at, id) < (last row's)` in the list's order, then `LIMIT page_size + 1`), so
with an index matching the order (with its tiebreaker) page 1 and page 20,000 cost the same, and nothing counts
the rows. The cursor is opaque to callers (URL-safe base64 of the last or first row's sort values and the
direction); a tampered one can only name another position in the same studio's rows (the tenant scope is
applied before it), and a malformed one raises `InvalidCursor` (the page views show the first page, the API
answers 404 as DRF's own cursor pagination does).

The condition is written as `f0 <= v0 AND (f0 < v0 OR (f0 = v0 AND id < v1))`: the redundant first bound lets
the index serve the range on any database (PostgreSQL turns it into an index condition), where a bare OR would
not. Ordering: every list ends with its primary key, so positions are unique and ties on the first field are
neither skipped nor shown twice.

The DRF class (`KeysetPagination`) lives here too, so the page and the API share one paginator; apps above jobs
(clients) use it as well. It keeps the `limit` parameter of the limit/offset pagination it replaces (at most
`MAX_LIMIT`); `offset` is gone, and so is `count`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param

M = TypeVar("M", bound=Model)

CURSOR_PARAM = "cursor"
MAX_LIMIT = 200


class InvalidCursor(ValueError):
    """A cursor that does not decode to a position of this list."""


@dataclass(frozen=True)
class KeysetPage(Generic[M]):
    """One page: its rows in the list's order, and the cursors of the pages either side (None at an end)."""

    items: list[M]
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def _field_names(ordering: Sequence[str]) -> list[tuple[str, bool]]:
    return [(name.lstrip("-"), name.startswith("-")) for name in ordering]


def encode_cursor(values: Sequence[Any], *, before: bool) -> str:
    """An opaque cursor for the position `values` (one per ordering field); `before` = the page ending there."""
    plain = [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
    raw = json.dumps({"p": plain, "b": int(before)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, model: type[Model], ordering: Sequence[str]) -> tuple[list[Any], bool]:
    """The position and direction in `cursor`, each value parsed by its model field; InvalidCursor if it isn't
    one of this list's cursors."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        plain, before = data["p"], bool(data["b"])
        fields = _field_names(ordering)
        if not isinstance(plain, list) or len(plain) != len(fields) or any(v is None for v in plain):
            raise InvalidCursor("wrong position")
        values = [model._meta.get_field(name).to_python(v) for (name, _), v in zip(fields, plain, strict=True)]
    except (binascii.Error, ValueError, TypeError, KeyError, ValidationError, UnicodeDecodeError) as exc:
        raise InvalidCursor(str(exc)) from exc
    if any(v is None for v in values):
        raise InvalidCursor("wrong position")
    return values, before


def _after(ordering: Sequence[str], values: Sequence[Any], *, reverse: bool) -> Q:
    """Rows after the position in the list's order (before it when `reverse`), with the first field's bound
    repeated on its own so that an index range can serve it."""
    fields = _field_names(ordering)
    lookups = []
    for name, descending in fields:
        going_down = descending != reverse
        lookups.append((name, "lt" if going_down else "gt"))
    first_name, first_op = lookups[0]
    condition = Q()
    for i, (name, op) in enumerate(lookups):
        term = Q(**{f"{name}__{op}": values[i]})
        for j in range(i):
            term &= Q(**{fields[j][0]: values[j]})
        condition |= term
    return Q(**{f"{first_name}__{first_op}e": values[0]}) & condition


def _position(item: Model, ordering: Sequence[str]) -> list[Any]:
    return [getattr(item, name) for name, _ in _field_names(ordering)]


def paginate(queryset: QuerySet[M], *, ordering: Sequence[str], cursor: str | None, page_size: int) -> KeysetPage[M]:
    """The page of `queryset` (in `ordering`, whose last field must be unique) at `cursor` (None: the first).
    One query; two when a page going back reaches the start (then it is the first page, full)."""
    if not ordering or ordering[-1].lstrip("-") not in ("id", "pk"):
        raise ValueError("a keyset ordering must end with the primary key")
    if cursor is None:
        return _forward(queryset, ordering, None, page_size)
    values, before = decode_cursor(cursor, model=queryset.model, ordering=ordering)
    if not before:
        return _forward(queryset, ordering, values, page_size)
    reversed_ordering = [name[1:] if name.startswith("-") else f"-{name}" for name in ordering]
    rows = list(queryset.filter(_after(ordering, values, reverse=True)).order_by(*reversed_ordering)[: page_size + 1])
    if len(rows) <= page_size:  # back at the start: the first page, whole (newer rows may have arrived)
        return _forward(queryset, ordering, None, page_size)
    items = rows[:page_size][::-1]
    return KeysetPage(
        items=items,
        next_cursor=encode_cursor(_position(items[-1], ordering), before=False),
        previous_cursor=encode_cursor(_position(items[0], ordering), before=True),
    )


def _forward(queryset: QuerySet[M], ordering: Sequence[str], values: Sequence[Any] | None, size: int) -> KeysetPage[M]:
    if values is not None:
        queryset = queryset.filter(_after(ordering, values, reverse=False))
    rows = list(queryset.order_by(*ordering)[: size + 1])
    items = rows[:size]
    more, came_from = len(rows) > size, values is not None
    return KeysetPage(
        items=items,
        next_cursor=encode_cursor(_position(items[-1], ordering), before=False) if more and items else None,
        previous_cursor=encode_cursor(_position(items[0], ordering), before=True) if came_from and items else None,
    )


def page_for_request(
    queryset: QuerySet[M], *, ordering: Sequence[str], cursor: str | None, page_size: int
) -> KeysetPage[M]:
    """For pages: a malformed cursor is the first page (as Django's Paginator.get_page treats a bad number)."""
    try:
        return paginate(queryset, ordering=ordering, cursor=cursor or None, page_size=page_size)
    except InvalidCursor:
        return paginate(queryset, ordering=ordering, cursor=None, page_size=page_size)


class KeysetPagination(BasePagination):
    """DRF pagination by cursor, in the view's `keyset_ordering`: `{"next", "previous", "results"}`, no count.
    `?limit=` sets the page size (default: the settings' PAGE_SIZE, at most MAX_LIMIT)."""

    limit_query_param = "limit"

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any]:
        self.request = request
        ordering = getattr(view, "keyset_ordering", None) or ("-id",)
        cursor = request.query_params.get(CURSOR_PARAM) or None
        try:
            self.page = paginate(queryset, ordering=ordering, cursor=cursor, page_size=self._limit(request))
        except InvalidCursor as exc:
            raise NotFound("Invalid cursor.") from exc
        return self.page.items

    def _limit(self, request: Request) -> int:
        default = int(api_settings.PAGE_SIZE or 50)
        try:
            limit = int(request.query_params.get(self.limit_query_param, default))
        except ValueError:
            return default
        return max(1, min(limit, MAX_LIMIT))

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), "offset")
        return replace_query_param(url, CURSOR_PARAM, cursor)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": CURSOR_PARAM,
                "required": False,
                "in": "query",
                "description": "The page's cursor, from a `next` or `previous` link (none: the first page).",
                "schema": {"type": "string"},
            },
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (at most {MAX_LIMIT}).",
                "schema": {"type": "integer"},
            },
        ]
