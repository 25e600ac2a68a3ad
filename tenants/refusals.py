"""One way to refuse, for every app: `Refused(message, status=..., code=...)`.

A service raises a Refused (or a subclass named for its app: DoubleError, TemplateError, OutOfCredits, ...) when a
business rule says no. `message` is written for people and shown as is; `status` is the HTTP status the page or
the API answers with (400 by default; 402 out of credits, 404 not found, 409 a state conflict, ...); `code` is a
stable machine-readable name for integrations. The API maps every Refused once (studio_saas.api_errors, the DRF
exception handler); pages use `refusal_page` (or the messages framework when they re-render a form).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class Refused(Exception):
    """A business rule refused the action; the message is for people."""

    status: int = 400
    code: str = "refused"
    #: Messages by input field, for a refusal about the input (a 400): the API answers it like a validation error.
    fields: dict[str, list[str]] | None = None

    def __init__(self, message: str, status: int | None = None, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = int(status)
        if code is not None:
            self.code = code
        self.extra = extra

    def __str__(self) -> str:
        return self.message


def refusal_page(
    request: HttpRequest, exc: Refused, *, template: str, context: dict[str, Any] | None = None
) -> HttpResponse:
    """A page's answer to a refusal: `template` rendered with `message` and `status` (and `context`), answered
    with the refusal's status; pages that re-render a form or list show the message through the messages
    framework instead."""
    merged = {**(context or {}), "message": exc.message, "status": exc.status, "refusal": exc}
    return render(request, template, merged, status=exc.status)
