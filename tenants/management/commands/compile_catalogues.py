"""`python manage.py compile_catalogues`: compile locale/*/LC_MESSAGES/*.po to .mo with babel (tenants/catalogues.py),
like Django's compilemessages but without GNU gettext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tenants.catalogues import compile_all, po_files


class Command(BaseCommand):
    help = "Compile the translation catalogues (.po) of LOCALE_PATHS to .mo, without GNU gettext."

    def handle(self, *args: Any, **options: Any) -> None:
        for locale_dir in map(Path, settings.LOCALE_PATHS):
            written = compile_all(locale_dir)
            for path in written:
                self.stdout.write(f"compiled {path.relative_to(locale_dir.parent)}")
            self.stdout.write(f"{locale_dir}: {len(po_files(locale_dir))} catalogues, {len(written)} written")
