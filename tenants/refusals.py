"""One way to refuse, for every app: `Refused(message, status=..., code=...)`.

A service raises a Refused (or a subclass named for its app: DoubleError, TemplateError, OutOfCredits, ...) when a
business rule says no. `message` is written for people and shown as is; `status` is the HTTP status the page or
the API answers with (400 by default; 402 out of credits, 404 not found, 409 a state conflict, ...); `code` is a
stable machine-readable name for integrations. The API maps every Refused once (studio_saas.api_errors, the DRF
exception handler); pages use `refusal_response`.
"""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """A business rule refused the action; the message is for people."""

    status: int = 400
    code: str = "refused"

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
