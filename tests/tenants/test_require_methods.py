"""tenants.access.require_http_methods_of: Django's require_http_methods for a view of an object. Another
studio's (or a missing) object is a 404 whatever the method; one's own answers 405 with the Allow header for a
method the view doesn't take; an accepted method reaches the view without a second lookup."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import Http404, HttpResponse
from django.test import RequestFactory

from tenants.access import require_http_methods_of

LOOKUPS: list[int] = []


def _lookup(thing_id: int) -> str:
    LOOKUPS.append(thing_id)
    if thing_id != 1:
        raise Http404("No such thing")
    return "thing"


@require_http_methods_of(_lookup, ["POST"])
def view(request: Any, thing_id: int) -> HttpResponse:
    return HttpResponse(f"done {thing_id}")


@pytest.fixture(autouse=True)
def _clear() -> None:
    LOOKUPS.clear()


def test_an_accepted_method_reaches_the_view_without_a_lookup() -> None:
    response = view(RequestFactory().post("/things/1/"), thing_id=1)
    assert response.status_code == 200 and response.content == b"done 1" and LOOKUPS == []


def test_another_method_on_ones_own_object_is_a_405_with_allow() -> None:
    response = view(RequestFactory().get("/things/1/"), thing_id=1)
    assert response.status_code == 405 and response["Allow"] == "POST" and LOOKUPS == [1]


def test_another_method_on_an_unknown_object_is_a_404() -> None:
    with pytest.raises(Http404):
        view(RequestFactory().delete("/things/2/"), thing_id=2)
    assert LOOKUPS == [2]
