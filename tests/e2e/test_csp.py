"""The Content-Security-Policy in a real browser (issue 13, finding 7): the main pages, opened by chromium WITH the
policy, report no violation, and what used to be inline still works: the studio's colours (static/js/css-vars.js),
the progress bars' widths (classes), the designer's likeness slider, the gallery's cart, Swagger UI.

Violations are recorded twice: a `securitypolicyviolation` listener that an init script adds to every document,
and the console messages in which chromium reports them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import payments_on
from tests.e2e.test_accessibility import _build, _sign_in
from tests.galleries.test_public_support import private_storage_fixture  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.effectiveDirective} blocked ${e.blockedURI || "(inline)"} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`
  );
});
"""


class Violations:
    """The CSP violations of the pages a Page opens: its console's reports and the init script's records."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORDER)
        page.on(
            "console",
            lambda msg: (
                ("Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text)
                and self.console.append(msg.text)
            ),
        )

    def take(self, name: str) -> list[str]:
        recorded = self.page.evaluate("window.__cspViolations || []")
        found = [f"{name}: {v}" for v in recorded] + [f"{name} (console): {m}" for m in self.console]
        self.console = []
        return found


def _open(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), url
    page.wait_for_load_state("networkidle")


def test_the_main_pages_run_under_the_policy_without_violations(
    live_server, two_tenants, browser: Browser, private_storage: Path, fake_stripe: Any
):
    """Issue 13, finding 7: dashboard, client and photo set, template designer, render run, the studio's and the
    client's gallery (with its cart), the self-upload page, the API docs, the browsable API and the admin open
    in chromium under the Content-Security-Policy with zero violations, and their scripts and styles work."""
    a, _ = two_tenants
    payments_on(a, fake_stripe)  # the client's gallery shows its cart
    pages = _build(a)
    studio = f"{live_server.url}{a.prefix}/"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        violations = Violations(page)
        _sign_in(page, studio, a.owner.email)
        problems = violations.take("sign-in")

        # The studio's colour, set from data-css-* by css-vars.js; a job's progress bar, 40% wide by its class.
        _open(page, studio + pages["dashboard"])
        assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()") == (
            "#aa3366"
        )
        bars = _bar_widths(page)
        problems += violations.take("dashboard")

        for name in ("client", "photo set", "render run", "gallery (studio)", "double", "new render run"):
            _open(page, studio + pages[name])
            bars += _bar_widths(page)
            problems += violations.take(name)
        # Each progress bar is as wide as its class says (a class per percent, instead of a style attribute).
        assert any(percent > 0 for percent, _ in bars), bars
        assert all(abs(ratio - percent / 100) < 0.02 for percent, ratio in bars), bars

        # The designer's likeness slider shows its value as it moves (static/templates_app/template-form.js).
        _open(page, studio + pages["template designer"])
        page.locator("input[type=range]").first.fill("1.5")
        expect(page.locator("#identity-value")).to_have_text("1.5")
        problems += violations.take("template designer")

        # The client's gallery and its cart (static/billing/cart.js): ticking a portrait updates the total.
        _open(page, studio + pages["gallery (client)"])
        assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()") == (
            "#aa3366"
        )
        cart = page.get_by_role("form", name="Buy portraits")
        expect(cart).to_contain_text("0 portraits")
        page.locator('input[form="buy-form"][name="portrait"]').first.check()
        expect(cart).to_contain_text("1 portrait · €9.90")
        problems += violations.take("gallery (client)")

        _open(page, studio + pages["self-upload"])
        problems += violations.take("self-upload")

        # Swagger UI (drf-spectacular's split view: its init script is a file) draws the API's operations.
        _open(page, studio + "api/docs/")
        expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
        problems += violations.take("API docs")

        # The browsable API, as a signed-in member sees it.
        _open(page, studio + "api/clients/")
        expect(page.locator(".response-info")).to_be_visible()
        problems += violations.take("browsable API")

        # The studio's admin: the index, a list, and an object's page.
        for name, path in (
            ("admin", "admin/"),
            ("admin list", "admin/clients/client/"),
            ("admin portrait", f"admin/generation/portrait/{_a_portrait_id(a)}/change/"),
        ):
            _open(page, studio + path)
            problems += violations.take(name)

        # The platform's studio chooser: each studio's mark in its own colour.
        _open(page, f"{live_server.url}/")
        mark = page.locator(".brand-mark-studio").first
        assert mark.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(170, 51, 102)"
        problems += violations.take("studio chooser")
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def _bar_widths(page: Page) -> list[tuple[int, float]]:
    """Each progress bar of the page: the percent its class names, and its width as a share of the track."""
    return [
        (int(percent), ratio)
        for percent, ratio in page.evaluate(
            """() => [...document.querySelectorAll(".progress > span[class*='pct-']")].map((el) => [
                el.className.match(/pct-(\\d+)/)[1],
                el.getBoundingClientRect().width / el.parentElement.getBoundingClientRect().width,
            ])"""
        )
    ]


def _a_portrait_id(tenant: Any) -> int:
    from generation.models import Portrait
    from tenants.context import tenant_context

    with tenant_context(tenant.studio):
        return Portrait.objects.order_by("pk").values_list("pk", flat=True).first()
