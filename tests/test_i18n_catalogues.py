"""The client pages' translations, checked without a browser or a database (issue 19, part 2): every visible
string of the client-facing templates is marked for translation, the French and Chinese catalogues translate
every entry (no untranslated, no fuzzy), the strings marked in templates and in the client-facing Python are in
them, and the committed .mo files are the compiled .po (tenants/catalogues.py)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tenants.catalogues import compiled, po_files

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
LANGUAGES = ["fr", "zh_Hans"]
DOMAINS = ["django", "djangojs"]

# What a client sees: the gallery, the self-upload link, buying in the gallery, the emails to a client.
CLIENT_TEMPLATES = sorted(
    [
        *ROOT.glob("galleries/templates/galleries/public/*.html"),
        *ROOT.glob("billing/templates/billing/gallery/*.html"),
        *(ROOT / "clients/templates/clients").glob("self_*.html"),
        ROOT / "clients/templates/clients/link_invalid.html",
        ROOT / "clients/templates/clients/_self_photos.html",
        ROOT / "clients/templates/clients/_photo_grid.html",
        ROOT / "clients/templates/clients/email/upload_link.txt",
        *ROOT.glob("galleries/templates/galleries/email/*"),
        ROOT / "templates/includes/client_languages.html",
        # The client messages (clients/messages.py) and the reminders' unsubscribe page.
        ROOT / "templates/emails/client_layout.html",
        ROOT / "templates/emails/_client_footer.txt",
        *ROOT.glob("clients/templates/clients/messages/*"),
        *ROOT.glob("billing/templates/billing/messages/*"),
        *ROOT.glob("galleries/templates/galleries/messages/*"),
        ROOT / "clients/templates/clients/stop_reminders.html",
    ]
)
# Every other template is a studio's page or email (or the platform's: sign-in, sign-up), in the staff member's
# language: all of them are checked the same way, except the ones below (with why).
NOT_TRANSLATED = {
    # Django REST framework's browsable API and the OpenAPI explorer: the integrator's tools, in English like the
    # API's own error messages and schema.
    *ROOT.glob("templates/rest_framework/**/*.html"),
    *ROOT.glob("templates/api_docs/*.html"),
    # The platform operator's admin (Django's admin has its own translations; the operator works in English).
    ROOT / "templates/admin/base_site.html",
}
STUDIO_TEMPLATES = sorted(
    path
    for pattern in ("templates/**/*.html", "templates/**/*.txt", "*/templates/**/*.html", "*/templates/**/*.txt")
    for path in ROOT.glob(pattern)
    if ".venv" not in path.parts
    and "node_modules" not in path.parts
    and path not in NOT_TRANSLATED
    and path not in CLIENT_TEMPLATES
)
# Python modules whose messages a client reads.
CLIENT_MODULES = [
    "galleries/access.py",
    "galleries/client_services.py",
    "galleries/views_public.py",
    "galleries/emails.py",
    "billing/orders.py",
    "billing/views_gallery.py",
    "clients/reasons.py",
    "clients/forms.py",
]
CLIENT_SCRIPTS = ["static/js/uploader.js", "static/galleries/gallery.js"]

COMMENT_BLOCK = re.compile(r"{%\s*comment\b.*?%}.*?{%\s*endcomment\s*%}", re.S)
BLOCK_TRANS = re.compile(r"{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}", re.S)
TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
IGNORED_ELEMENTS = re.compile(r"<(script|style|svg)\b.*?</\1>", re.S | re.I)
VISIBLE_ATTRIBUTE = re.compile(r'\b(title|alt|aria-label|placeholder|data-one|data-many)="([^"]*)"')
WORD = re.compile(r"[A-Za-z]{2,}")


def _visible_leftovers(source: str) -> list[str]:
    """The visible words of a template that no translation tag covers."""
    text = COMMENT_BLOCK.sub(" ", source)
    text = BLOCK_TRANS.sub(" ", text)
    text = re.sub(r"{%\s*trans(?:late)?\s+(\"[^\"]*\"|'[^']*'|\S+).*?%}", " ", text)
    text = TAG.sub(" ", text)
    text = IGNORED_ELEMENTS.sub(" ", text)
    leftovers = [value for _name, value in VISIBLE_ATTRIBUTE.findall(text) if WORD.search(value)]
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    leftovers += [chunk.strip() for chunk in re.split(r"\n", text) if WORD.search(chunk)]
    return leftovers


@pytest.mark.parametrize("path", CLIENT_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_visible_string_of_a_client_template_is_marked_for_translation(path: Path) -> None:
    assert _visible_leftovers(path.read_text()) == []


@pytest.mark.parametrize("path", STUDIO_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_visible_string_of_a_studio_template_is_marked_for_translation(path: Path) -> None:
    assert _visible_leftovers(path.read_text()) == []


def test_the_studio_templates_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in STUDIO_TEMPLATES}
    assert {
        "templates/base.html",
        "templates/tenants/dashboard.html",
        "clients/templates/clients/client_list.html",
    } <= names
    assert len(STUDIO_TEMPLATES) > 80


def test_the_leftover_finder_finds_what_is_not_marked() -> None:
    source = (
        '{% load i18n %}<p>{% translate "Hello" %}</p><p title="Open it">Plain words</p>'
        "{% blocktranslate %}Fine {{ x }}{% endblocktranslate %}<svg><text>ok</text></svg>"
        "{% comment %}A note for developers{% endcomment %}"
    )
    assert _visible_leftovers(source) == ["Open it", "Plain words"]


def _catalogue(language: str, domain: str):
    with (LOCALE / language / "LC_MESSAGES" / f"{domain}.po").open("rb") as handle:
        return read_po(handle, locale=language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", DOMAINS)
def test_the_catalogues_are_complete_no_untranslated_and_no_fuzzy_entry(language: str, domain: str) -> None:
    catalogue = _catalogue(language, domain)
    assert not catalogue.fuzzy
    entries = [m for m in catalogue if m.id]
    assert len(entries) > 15
    untranslated = [m.id for m in entries if not m.string or (isinstance(m.string, tuple) and not all(m.string))]
    fuzzy = [m.id for m in entries if m.fuzzy]
    assert untranslated == [] and fuzzy == []
    plural_forms = {len(m.string) for m in entries if isinstance(m.id, tuple)}
    assert plural_forms <= {catalogue.num_plurals}  # every plural entry has the language's forms


def _project_modules() -> list[Path]:
    """The project's Python (tests, benchmarks and migrations aside): every `_("...")` in it is in the catalogues."""
    skip = {".venv", "node_modules", "tests", "bench", "migrations", "var", ".gpu"}
    modules = [p for p in ROOT.glob("*/**/*.py") if not skip & set(p.relative_to(ROOT).parts)]
    assert {ROOT / m for m in CLIENT_MODULES} <= set(modules)
    return modules


def _ids(language: str, domain: str) -> set[str]:
    return {m.id[0] if isinstance(m.id, tuple) else m.id for m in _catalogue(language, domain) if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_strings_marked_in_templates_python_and_scripts_are_in_the_catalogues(language: str) -> None:
    """A string marked after the last `makemessages` would show in English: the literal ones are checked here."""
    known = _ids(language, "django")
    literal = re.compile(r"{%\s*translate\s+\"([^\"]+)\"\s*%}")
    marked = {s for path in CLIENT_TEMPLATES + STUDIO_TEMPLATES for s in literal.findall(path.read_text())}
    python = re.compile(r"\b_\(\s*\"((?:[^\"\\]|\\.)+)\"\s*\)")
    marked |= {s.replace('\\"', '"') for m in _project_modules() for s in python.findall(m.read_text())}
    assert len(marked) > 100
    assert sorted(marked - known) == []
    script = re.compile(r"\bgettext\(\"((?:[^\"\\]|\\.)+)\"\)")
    scripts = [p for p in ROOT.glob("static/**/*.js") if not p.name.endswith(".min.js")]
    assert {ROOT / p for p in CLIENT_SCRIPTS} <= set(scripts)
    in_scripts = {s for path in scripts for s in script.findall(path.read_text())}
    assert len(in_scripts) > 10
    assert sorted(in_scripts - _ids(language, "djangojs")) == []


PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%[sdif]")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", DOMAINS)
def test_every_translation_keeps_the_placeholders_of_its_english(language: str, domain: str) -> None:
    """A translation that drops or renames a %(name)s would raise or show the wrong value at run time."""
    wrong = []
    for m in _catalogue(language, domain):
        if not m.id or not m.string:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        expected = set().union(*(set(PLACEHOLDER.findall(text)) for text in ids))
        for text in m.string if isinstance(m.string, tuple) else (m.string,):
            found = set(PLACEHOLDER.findall(text))
            # A plural's forms may leave out the count (Chinese has one form, "%(count)s" stays in it).
            if not found <= expected or (not isinstance(m.id, tuple) and found != expected):
                wrong.append((m.id, text))
    assert wrong == []


def test_french_reads_with_french_typography() -> None:
    """A non-breaking space before : ; ! ? and inside « », typographic apostrophes."""
    for domain in DOMAINS:
        for m in _catalogue("fr", domain):
            for text in m.string if isinstance(m.string, tuple) else [m.string]:
                assert not re.search(r" [:;!?»]|« ", text), text
                assert not re.search(r"\w'\w", text), text


def _messages(catalogue) -> dict:
    """What a catalogue translates: (context, id) -> translation, fuzzy and untranslated entries left out."""

    def plain(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {(m.context, plain(m.id)): plain(m.string) for m in catalogue if m.id and m.string and not m.fuzzy}


def test_the_committed_mo_files_are_the_compiled_po_files() -> None:
    """Run `python manage.py compile_catalogues` after changing a .po file (compared by content, not by bytes, so
    another babel version's byte layout doesn't matter)."""
    catalogues = po_files(LOCALE)
    assert len(catalogues) == len(LANGUAGES) * len(DOMAINS)
    for po_path in catalogues:
        mo_path = po_path.with_suffix(".mo")
        assert mo_path.exists(), f"{mo_path} is missing"
        with po_path.open("rb") as handle:
            source = _messages(read_po(handle))
        with mo_path.open("rb") as handle:
            built = _messages(read_mo(handle))
        assert built == source, f"{mo_path} is out of date"
        assert read_mo(io.BytesIO(compiled(po_path))) is not None


def test_the_up_to_date_check_sees_a_changed_translation(tmp_path: Path) -> None:
    po_path = tmp_path / "fr" / "LC_MESSAGES" / "django.po"
    po_path.parent.mkdir(parents=True)
    po_path.write_text('msgid ""\nmsgstr ""\n"Language: fr\\n"\n\nmsgid "Yes"\nmsgstr "Oui"\n')
    mo = read_mo(io.BytesIO(compiled(po_path)))
    assert _messages(mo) == {(None, "Yes"): "Oui"}
    po_path.write_text(po_path.read_text().replace("Oui", "Ouais"))
    with po_path.open("rb") as handle:
        assert _messages(read_po(handle)) != _messages(mo)
