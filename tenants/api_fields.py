"""Serializer fields every app's API shares."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

MAX_ID = 2**63 - 1  # the largest primary key a row can have (a 64-bit integer)
ID_RULE = f"Use an id: a whole number from 1 to {MAX_ID}."


class IdField(serializers.IntegerField):
    """An object id in a request body: a whole number in the range of a primary key. A number outside it is a 400
    with a clear message, never a database error (SQLite can't even bind a larger integer)."""

    default_error_messages = {"invalid": ID_RULE, "min_value": ID_RULE, "max_value": ID_RULE}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
