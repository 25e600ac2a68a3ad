"""PostgreSQL backend that carries the tenant context into every transaction (see tenants/rls.py).

Django's PostgreSQL backend, plus: an execute wrapper that makes `SET LOCAL app.studio_id` / `app.platform`
follow the tenant context, and exact bookkeeping of when those local settings stop being in force (a new
transaction, a commit, a rollback, a rollback to a savepoint, a new connection)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from tenants.rls import ScopeExecuteWrapper


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The (studio_id, platform) values in force in the current transaction; None: nothing set.
        self.scope_applied: tuple[str, str] | None = None
        self.execute_wrappers.append(ScopeExecuteWrapper(self))

    def connect(self) -> None:
        self.scope_applied = None
        super().connect()

    def _set_autocommit(self, autocommit: bool) -> None:
        self.scope_applied = None
        super()._set_autocommit(autocommit)

    def _commit(self) -> None:
        self.scope_applied = None
        super()._commit()

    def _rollback(self) -> None:
        self.scope_applied = None
        super()._rollback()

    def _savepoint_rollback(self, sid: str) -> None:
        self.scope_applied = None
        super()._savepoint_rollback(sid)
