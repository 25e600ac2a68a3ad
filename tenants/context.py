"""The tenant context: which studio the current code runs for.

A contextvar, set by the tenant middleware for a request and by `run_job` for a task, always reset in a
`finally`. Tenant-owned managers read it and raise when it is missing (fail closed). The database follows it
too (see tenants/rls.py): every query runs inside a transaction with `SET LOCAL app.studio_id`.

The only ways around it, both easy to grep:
- `Model.objects.unscoped()` for a queryset without the studio filter (row-level security still applies),
- `platform_context()` for platform work (sweepers, operator views) that spans studios.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Studio


class TenantContextMissing(RuntimeError):
    """A tenant-owned table was queried with no studio in the current context."""


class CrossTenantWrite(RuntimeError):
    """An object of one studio was saved while another studio is the current one."""


@dataclass(frozen=True)
class _Scope:
    studio_id: int | None = None
    studio: Studio | None = None
    platform: bool = False


_NO_SCOPE = _Scope()
_scope: contextvars.ContextVar[_Scope] = contextvars.ContextVar("studio_scope", default=_NO_SCOPE)


def current_studio() -> Studio | None:
    """The studio of the current context, or None."""
    return _scope.get().studio


def current_studio_id() -> int | None:
    return _scope.get().studio_id


def in_platform_context() -> bool:
    return _scope.get().platform


def require_studio_id() -> int:
    """The current studio's id; raises TenantContextMissing when there is none."""
    studio_id = _scope.get().studio_id
    if studio_id is None:
        raise TenantContextMissing(
            "No studio in the current context: wrap the code in tenant_context(studio), "
            "or use platform_context() / .unscoped() explicitly."
        )
    return studio_id


@contextmanager
def tenant_context(studio: Studio) -> Iterator[Studio]:
    """Run the block for one studio. Nested contexts restore the outer one on exit."""
    if studio is None or studio.pk is None:
        raise ValueError("tenant_context() needs a saved studio")
    token = _scope.set(_Scope(studio_id=studio.pk, studio=studio))
    try:
        yield studio
    finally:
        _scope.reset(token)


@contextmanager
def platform_context() -> Iterator[None]:
    """Platform work across studios (sweepers, operator tools). Grep for it: every use is deliberate."""
    token = _scope.set(_Scope(platform=True))
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def no_tenant_context() -> Iterator[None]:
    """Clear the context for a block (used by tests to prove that queries fail closed)."""
    token = _scope.set(_NO_SCOPE)
    try:
        yield
    finally:
        _scope.reset(token)


def db_scope_values() -> tuple[str, str]:
    """The values for the PostgreSQL settings app.studio_id and app.platform of the current context."""
    scope = _scope.get()
    return ("" if scope.studio_id is None else str(scope.studio_id), "on" if scope.platform else "")
