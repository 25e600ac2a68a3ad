"""`migrate` runs as the owner role (DATABASE_OWNER_URL) when one is configured; the application's own
connection (DATABASE_URL) is a role without DDL rights and without BYPASSRLS."""

from __future__ import annotations

from typing import Any

import environ
from django.conf import settings
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import connections


class Command(MigrateCommand):
    def handle(self, *args: Any, **options: Any) -> Any:
        owner_url = settings.DATABASE_OWNER_URL
        database = options.get("database") or "default"
        if owner_url and database == "default":
            owner = environ.Env.db_url_config(owner_url)
            connection = connections[database]
            connection.close()
            for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
                if key in owner:
                    connection.settings_dict[key] = owner[key]
            connection.settings_dict.setdefault("OPTIONS", {}).update(owner.get("OPTIONS", {}))
        return super().handle(*args, **options)
