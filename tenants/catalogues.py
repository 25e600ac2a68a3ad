"""The translation catalogues (locale/<language>/LC_MESSAGES/<domain>.po) compiled to the .mo files Django reads,
with babel: no GNU gettext (msgfmt) needed, on a developer's machine or in CI.

The compiled .mo files are committed beside their .po (tests/test_i18n_catalogues.py fails when one is missing or
out of date); `python manage.py compile_catalogues` writes them again after a .po changes."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


def po_files(locale_dir: Path) -> list[Path]:
    """Every catalogue under `locale_dir` (locale/<language>/LC_MESSAGES/*.po), sorted."""
    return sorted(locale_dir.glob("*/LC_MESSAGES/*.po"))


def compiled(po_path: Path) -> bytes:
    """The .mo bytes of a .po file (fuzzy entries left out, as msgfmt does). The same .po gives the same bytes."""
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=po_path.parent.parent.name)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def compile_all(locale_dir: Path) -> list[Path]:
    """Write each .po's .mo beside it when it differs; the .mo files written."""
    written = []
    for po_path in po_files(locale_dir):
        mo_path = po_path.with_suffix(".mo")
        data = compiled(po_path)
        if not mo_path.exists() or mo_path.read_bytes() != data:
            mo_path.write_bytes(data)
            written.append(mo_path)
    return written
