"""The Content-Security-Policy (issue 13, finding 7): every HTML page answers with a strict policy, and nothing
the pages carry needs 'unsafe-inline' (no inline script body, <style> block, style attribute or on*= handler).

Three layers, cheapest first:
- the project's templates are read as text: none has an inline script, style or handler (a later change can't
  bring one back);
- every page is requested (every GET URL of the studio URLconf, walked the way tests/test_isolation.py walks it,
  with the studio's own objects: studio pages, the client's gallery and upload pages, the admin, the API docs and
  the DRF browsable API; plus the platform's pages): each HTML answer has the policy, and its HTML, parsed, has
  nothing inline either (this also covers HTML made in Python, e.g. the admin's previews, and the third-party
  templates of the admin, DRF and drf-spectacular);
- tests/e2e/test_csp.py opens the main pages in a real browser and records the violations it reports.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests import test_isolation
from tests.test_isolation import World, own_values, studio_routes

ROOT = Path(__file__).resolve().parents[1]
world = test_isolation.world  # the fixture: two studios with one row of every tenant-owned model each
STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "object-src": "'none'",
}
UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:", "http:", "https:")


def directives(header: str) -> dict[str, str]:
    """The policy's directives: name -> its sources, as one string."""
    parsed = {}
    for part in header.split(";"):
        name, _, sources = part.strip().partition(" ")
        if name:
            parsed[name] = sources.strip()
    return parsed


def policy_problems(header: str | None) -> list[str]:
    """What is wrong with a Content-Security-Policy header (empty: it is the strict policy)."""
    if not header:
        return ["no Content-Security-Policy header"]
    policy = directives(header)
    problems = [
        f"{name} is {policy.get(name)!r}, not {want!r}" for name, want in STRICT.items() if policy.get(name) != want
    ]
    for name in ("script-src", "style-src"):
        problems += [f"{name} allows {source}" for source in policy.get(name, "").split() if source in UNSAFE]
    form_action = policy.get("form-action", "").split()
    if not form_action or form_action[0] != "'self'" or any(s in UNSAFE for s in form_action):
        problems.append(f"form-action is {policy.get('form-action')!r}")
    return problems


# --- What needs 'unsafe-inline' in HTML -------------------------------------------------------------------------

JSON_SCRIPT_TYPES = ("application/json", "application/ld+json")


class InlineFinder(HTMLParser):
    """Inline script bodies, <style> blocks, style attributes, on*= handlers and javascript: URLs of an HTML
    document (a <script type="application/json">, as json_script makes, is data, not code: allowed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "style":
            self.found.append(f"<style> block at line {self.getpos()[0]}")
        if tag == "script" and "src" not in values and (values.get("type") or "").lower() not in JSON_SCRIPT_TYPES:
            self._script = {"line": self.getpos()[0], "body": ""}
        for name, value in attrs:
            if name == "style":
                self.found.append(f'<{tag} style="{value}"> at line {self.getpos()[0]}')
            elif name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> at line {self.getpos()[0]}")
            elif name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value!r}> at line {self.getpos()[0]}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script["body"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            body = self._script["body"].strip()
            if body:
                self.found.append(f"inline <script> at line {self._script['line']}: {body[:80]}")
            self._script = None


def inline_code(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    finder.close()
    return finder.found


# Django template syntax, taken out before a template is read as HTML: `{% render_field f style=style %}` is a
# template tag's argument, not an attribute, and a {# comment #} may mention <style>.
TEMPLATE_SYNTAX = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}|{%.*?%}|{{.*?}}", re.S)


def project_templates() -> list[Path]:
    """Every template of the project: templates/ and each app's templates/ (not the virtual environment's)."""
    skip = {".venv", "node_modules", ".git", "var"}
    found = []
    for folder in ROOT.iterdir():
        if folder.is_dir() and folder.name not in skip and not folder.name.startswith("."):
            found += [p for p in folder.rglob("*.html") if "templates" in p.relative_to(ROOT).parts]
    return sorted(found)


def is_email(path: Path) -> bool:
    """HTML emails are not web pages (no Content-Security-Policy applies to them) and email clients need inline
    styles: they keep theirs. They live in `email/` and `emails/` folders, and the client messages
    (clients/messages.py) in `<app>/templates/<app>/messages/`."""
    return bool({"email", "emails", "messages"} & set(path.relative_to(ROOT).parts))


# --- Tests ------------------------------------------------------------------------------------------------------


def test_no_template_has_inline_script_style_or_handler():
    """Issue 13, finding 7: no template of the project has an inline <script> body, a <style> block, a style
    attribute, an on*= handler or a javascript: URL (the policy has no 'unsafe-inline'); scripts and styles are
    static files, data for scripts goes in data-* attributes or json_script. HTML emails are exempt."""
    templates = project_templates()
    assert len(templates) > 50, templates  # a guard for the guard: the walk finds the templates
    problems = []
    for path in templates:
        if is_email(path):
            continue
        html = TEMPLATE_SYNTAX.sub(" ", path.read_text(encoding="utf-8"))
        problems += [f"{path.relative_to(ROOT)}: {problem}" for problem in inline_code(html)]
    assert not problems, "Inline code in templates (move it to static/):\n" + "\n".join(problems)


HTML_MAKERS = {"format_html", "format_html_join", "mark_safe", "SafeString"}


def python_html_strings() -> list[tuple[Path, int, str]]:
    """The string literals that the project's modules pass to format_html, format_html_join, mark_safe or
    SafeString: HTML made in Python (e.g. the admin's image previews)."""
    skip = {".venv", "node_modules", ".git", "var", "tests", "bench", "scripts"}
    found = []
    for folder in ROOT.iterdir():
        if not folder.is_dir() or folder.name in skip or folder.name.startswith("."):
            continue
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name not in HTML_MAKERS:
                    continue
                for arg in node.args:
                    for inner in ast.walk(arg):
                        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                            found.append((path, inner.lineno, inner.value))
    return found


def test_no_python_module_makes_html_with_inline_style_or_script():
    """Issue 13, finding 7: HTML made in Python (format_html in the admin, mark_safe) has no style attribute,
    inline script, <style> block or handler either."""
    strings = python_html_strings()
    assert any("<img" in text for _, _, text in strings), strings  # a guard: the admin's previews are seen
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {problem}" for path, line, text in strings for problem in inline_code(text)
    ]
    assert not problems, "\n".join(problems)


def test_the_checks_find_what_they_look_for():
    """The finders themselves: each kind of inline code is found, and what is allowed is not."""
    assert inline_code("<script>alert(1)</script>")
    assert inline_code('<p style="color: red">x</p>')
    assert inline_code("<style>p { color: red }</style>")
    assert inline_code('<button onclick="go()">x</button>')
    assert inline_code('<a href="javascript:go()">x</a>')
    assert not inline_code('<script src="/static/js/app.js" defer></script>')
    assert not inline_code('<script id="data" type="application/json">{"a": 1}</script>')
    assert not inline_code('<p class="x" data-css-brand="#123456">x</p>')
    assert not TEMPLATE_SYNTAX.sub(" ", "{% render_field f style=style %}{# <style> #}").strip()
    assert policy_problems(None) == ["no Content-Security-Policy header"]
    assert "style-src allows 'unsafe-inline'" in policy_problems("default-src 'self'; style-src 'self' 'unsafe-inline'")


def _check(response: Any, url: str) -> list[str]:
    """An HTML answer: the strict policy, and nothing inline in it. Any other answer: a policy (a signed media
    file keeps its own, stricter one: tenants/media.py)."""
    header = response.get("Content-Security-Policy")
    if not response.get("Content-Type", "").startswith("text/html"):
        return [] if header else [f"{url}: no Content-Security-Policy header"]
    problems = [f"{url}: {problem}" for problem in policy_problems(header)]
    problems += [f"{url}: {problem}" for problem in inline_code(response.content.decode("utf-8", "replace"))]
    return problems


# The pages the walk must reach with an HTML answer (a guard: the walk covers what the finding names).
MUST_SEE = {
    "dashboard",
    "client_detail",
    "template_detail",
    "run_detail",
    "gallery_detail",
    "gallery_public",
    "self_upload",
    "login",
    "studio-api-docs",
    "admin:index",
    "admin:clients_client_changelist",
    "admin:generation_portrait_change",
    "api-client-list",
}


def test_every_html_page_has_a_strict_policy_and_nothing_inline(client: Client, world: World):
    """Issue 13, finding 7: every page answers with a Content-Security-Policy whose script-src and style-src are
    'self' alone (no 'unsafe-inline', no 'unsafe-eval'), with default-src 'self', img-src 'self' data:,
    frame-ancestors 'none', base-uri 'self', object-src 'none'; and no HTML page carries an inline script, style
    or handler. Walked: every GET URL of a studio with its own objects, as its owner (studio pages, the client's
    gallery and upload link, the admin, the API docs and the browsable API, as a browser asks for it), then the
    platform's pages, signed out."""
    client.force_login(world.a.owner)
    problems: list[str] = []
    html_pages: set[str] = set()
    for route in studio_routes():
        if route.name == "admin:logout" or route.short_name in ("logout",):
            continue
        values = own_values(route, world, "a")
        if route.kwargs and not values:
            continue  # no object of the world names it (reported by the isolation tests)
        url = world.a.prefix + route.path(values)
        response = client.get(url, headers={"Accept": "text/html"})
        problems += _check(response, url)
        if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
            html_pages.add(route.name)
    # The photo set of the world's own client (the walk's ids come from separate factories).
    from clients.models import PhotoSet

    photo_set = world.objects["a"][PhotoSet]
    url = f"{world.a.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/"
    response = client.get(url)
    assert response.status_code == 200, url
    problems += _check(response, url)
    # The API docs' init script (drf-spectacular's split view serves it as a file of its own).
    script = client.get(f"{world.a.prefix}/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    client.logout()
    signed_out = ["/", "/accounts/login/", "/accounts/password-reset/", "/api/docs/", "/admin/login/", "/no-such/"]
    signed_out += [f"{world.a.prefix}{path}" for path in ("/accounts/login/", "/accounts/password-reset/", "/admin/")]
    for url in signed_out:
        response = client.get(url, follow=True)
        problems += _check(response, url)
        if response.status_code == 200 and url.endswith("/accounts/login/"):
            html_pages.add("login")
    assert not problems, "\n".join(problems)
    assert html_pages >= MUST_SEE, sorted(MUST_SEE - html_pages)


def test_the_policy_lets_forms_go_to_stripe_and_to_a_local_fake(client: Client, settings: Any):
    """Issue 13, finding 7: form-action names Stripe's hosted pages (Checkout, the customer portal, Connect
    onboarding: the forms that start them are answered with a redirect there, which browsers check against
    form-action), and the origin of STRIPE_API_BASE when a local fake serves them, read per request."""
    policy = directives(client.get("/accounts/login/")["Content-Security-Policy"])
    assert policy["form-action"].split() == [
        "'self'",
        "https://checkout.stripe.com",
        "https://billing.stripe.com",
        "https://connect.stripe.com",
    ]
    settings.STRIPE_API_BASE = "http://127.0.0.1:4567/v1"
    policy = directives(client.get("/accounts/login/")["Content-Security-Policy"])
    assert policy["form-action"].split()[-1] == "http://127.0.0.1:4567"


def _csp_settings(**env: str) -> dict[str, Any]:
    """The two policy settings as studio_saas/settings.py makes them from this environment (a fresh process)."""
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps([settings.CONTENT_SECURITY_POLICY, "
        "getattr(settings, 'CONTENT_SECURITY_POLICY_REPORT_ONLY', None)]))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CSP_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "studio_saas.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    enforced, reported = json.loads(result.stdout.strip().splitlines()[-1])
    return {"enforced": enforced, "reported": reported}


def test_report_only_mode_is_switched_from_the_environment(tmp_path: Path):
    """Issue 13, finding 7: by default the policy is enforced; CSP_REPORT_ONLY=1 makes it report-only (the same
    directives), CSP_REPORT_URI adds where browsers report."""
    default = _csp_settings(DATA_DIR=str(tmp_path))
    assert default["reported"] is None and default["enforced"]["DIRECTIVES"]["script-src"] == ["'self'"]
    switched = _csp_settings(DATA_DIR=str(tmp_path), CSP_REPORT_ONLY="1", CSP_REPORT_URI="/csp-reports/")
    assert switched["enforced"] is None
    assert switched["reported"]["DIRECTIVES"] == {**default["enforced"]["DIRECTIVES"], "report-uri": ["/csp-reports/"]}


@pytest.mark.parametrize("report_only", [False, True])
def test_report_only_mode_sends_the_same_policy_under_the_other_header(
    client: Client, settings: Any, report_only: bool
):
    """Issue 13, finding 7: CSP_REPORT_ONLY=1 (settings) sends the policy as Content-Security-Policy-Report-Only
    instead, to try a change on a live site."""
    if report_only:
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = settings.CONTENT_SECURITY_POLICY
        settings.CONTENT_SECURITY_POLICY = None
    response = client.get("/accounts/login/")
    enforced = response.get("Content-Security-Policy")
    reported = response.get("Content-Security-Policy-Report-Only")
    assert (enforced is None) == report_only and (reported is None) != report_only
    assert policy_problems(reported if report_only else enforced) == []
