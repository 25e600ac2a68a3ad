"""Issue 19's languages in a real browser: a new studio signs itself up, confirms its email from the outbox, sets
its clients' language on the branding page (a step of its checklist), and its client opens the upload link
(consent, then the upload page) and the gallery in that language: French on a desktop, Simplified Chinese on a
phone. The owner switches the studio's own pages to the same language (the account menu) and reads them so.
Each page: no English sentence left, `<html lang>` right, nothing wider than the screen, no console error.
Screenshots go to LANGUAGE_SCREENSHOTS=<folder> when set, to look at the layout with CJK text."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from clients import services as client_services
from tenants.context import platform_context, tenant_context
from tenants.models import Membership, Studio
from tests.conftest import Tenant
from tests.galleries.test_public_support import make_scene, private_storage_fixture  # noqa: F401  (fixture)
from tests.test_i18n_pages import ENGLISH

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-and-unusual-passphrase-9"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
CASES = {
    "fr": {"size": DESKTOP, "label": "Français", "upload": "Envoyez vos photos", "agree": "J’accepte et je continue"},
    "zh-hans": {"size": PHONE, "label": "简体中文", "upload": "上传您的照片", "agree": "同意并继续"},
}


# The studio's pages the owner checks in their language, and English that must not be left on them.
STUDIO_PAGES = [
    ("dashboard", ""),
    ("clients", "clients/"),
    ("templates", "templates/"),
    ("runs", "runs/"),
    ("galleries", "galleries/"),
    ("billing", "billing/"),
    ("members", "members/"),
    ("branding", "branding/"),
]
STUDIO_ENGLISH = [
    "Get your studio ready",
    "Sign out",
    "Dashboard",
    "Galleries",
    "Billing",
    "Change password",
    "Skip to content",
    "Members",
    "Add a client",
    "Accent colour",
    "Invite someone",
    "Templates",
]


def _check(page: Page, name: str, language: str, errors: list[str], english: list[str] = ENGLISH) -> None:
    page.wait_for_load_state("networkidle")
    text = page.inner_text("body")
    left = [sentence for sentence in english if sentence in text]
    assert not left, f"{name}: English left in {language}: {left}"
    assert page.get_attribute("html", "lang") == language, name
    screen = page.viewport_size["width"]
    width = page.evaluate("Math.max(document.documentElement.scrollWidth, window.innerWidth)")
    assert width <= screen, f"{name}: {width - screen}px wider than the {screen}px screen"
    assert not errors, f"{name}: {errors}"
    if os.environ.get("LANGUAGE_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["LANGUAGE_SCREENSHOTS"]) / f"{language}-{name}.png"), full_page=True)


@pytest.mark.parametrize("language", list(CASES))
def test_a_new_studio_serves_its_clients_in_their_language(
    live_server: Any, browser: Browser, private_storage: Path, language: str
) -> None:
    case = CASES[language]
    slug = f"studio-{language}"
    email = f"owner@{slug}.example"

    # The studio signs itself up and confirms its email.
    owner_context = browser.new_context(**case["size"])
    try:
        owner = owner_context.new_page()
        owner.goto(f"{live_server.url}/signup/")
        owner.get_by_label("Studio name").fill(f"Studio {language}")
        owner.get_by_label("Your studio's address").fill(slug)
        owner.get_by_label("Your name").fill("Camille Martin")
        owner.get_by_label("Your email").fill(email)
        owner.get_by_label("Password").fill(PASSWORD)
        owner.get_by_role("button", name="Create my studio").click()
        expect(owner.get_by_role("heading", level=1)).to_have_text("Check your email")
        link = re.search(r"https?://\S+/signup/confirm/\S+/", mail.outbox[-1].body).group(0)
        owner.goto(link)
        owner.get_by_role("button", name="Create my studio").click()
        expect(owner.locator(".onboarding")).to_contain_text("0 of 4 done")

        # Its checklist's first step: the branding page, where it picks its clients' language.
        owner.locator(".onboarding").get_by_role("link", name="Make it yours").click()
        owner.get_by_label("Your clients' language").select_option(language)
        owner.get_by_label("Accent colour").fill("#0f766e")
        owner.get_by_role("button", name="Save").click()
        expect(owner.locator(".messages")).to_contain_text("Your branding is saved.")
        owner.goto(f"{live_server.url}/s/{slug}/")
        expect(owner.locator(".onboarding")).to_contain_text("1 of 4 done")

        # The owner reads the studio's own pages in that language too: the switcher in the account menu.
        owner.locator(".account-menu summary").click()
        owner.get_by_label("Language").select_option(language)
        owner.get_by_role("button", name="Change language").click()
        errors: list[str] = []
        owner.on("console", lambda message: message.type == "error" and errors.append(message.text))
        for name, path in STUDIO_PAGES:
            owner.goto(f"{live_server.url}/s/{slug}/{path}")
            _check(owner, f"studio-{name}", language, errors, english=STUDIO_ENGLISH)
    finally:
        owner_context.close()

    with platform_context():
        studio = Studio.objects.get(slug=slug)
        membership = Membership.objects.select_related("user").get(studio=studio)
    assert studio.client_language == language
    tenant = Tenant(studio, membership.user, membership)
    with tenant_context(studio):
        person = client_services.create_client(name="Bea Client", email="bea@example.com", created_by=tenant.owner)
        photo_set = client_services.create_photo_set(client=person, created_by=tenant.owner)
        upload = client_services.create_upload_link(photo_set=photo_set, created_by=tenant.owner)
    gallery = make_scene(tenant).gallery

    # The client, on their own device: the upload link (consent, then the upload page) and the gallery.
    client_context = browser.new_context(**case["size"])
    try:
        page = client_context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.goto(f"{live_server.url}/s/{slug}/u/{upload.token}/")
        _check(page, "consent", language, errors)
        page.get_by_role("checkbox").check()
        page.get_by_role("button", name=case["agree"]).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(case["upload"])
        _check(page, "upload", language, errors)
        page.goto(f"{live_server.url}/s/{slug}/g/{gallery.token}/")
        _check(page, "gallery", language, errors)
        # The switcher says which language is in force.
        expect(page.locator(f'.lang-switch a[aria-current][lang="{language}"]')).to_be_visible()
    finally:
        client_context.close()
