"""Onboarding in a real browser: a new studio signs itself up on a phone, confirms its email from the outbox and
works through its whole getting-started checklist (branding, first client, first template, payments through the
fake Stripe's Connect onboarding); the owner signs in, invites a staff member; the staff member opens
the link from the email in a fresh browser, sets a password and lands on the studio's dashboard."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from billing import credits
from billing.models import StudioBilling
from clients.models import Client
from templates_app.models import Template
from tenants.context import platform_context, tenant_context
from tenants.models import Membership, Role, Studio, User
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.conftest import TEST_PASSWORD
from tests.e2e.axe import describe, serious_violations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a-long-and-unusual-passphrase-7"


def test_owner_invites_staff_who_joins_and_lands_on_the_dashboard(
    live_server, two_tenants, page: Page, browser: Browser
):
    a, _ = two_tenants
    studio_url = f"{live_server.url}{a.prefix}/"

    # The owner opens the studio, is sent to its branded sign-in page, and signs in.
    page.goto(studio_url)
    expect(page).to_have_url(re.compile(r"/s/studio-a/accounts/login/"))
    expect(page.locator(".plain-brand")).to_contain_text("Studio A")
    page.get_by_label("Email").fill(a.owner.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(studio_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Studio A")

    # Members → invite a staff member.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    page.get_by_label("Email address").fill("new.staff@example.com")
    page.get_by_label("Role", exact=True).select_option("staff")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".messages")).to_contain_text("Invitation sent to new.staff@example.com as Staff.")
    expect(page.locator(".invitations-table")).to_contain_text("new.staff@example.com")

    # The email went out (after the request's transaction committed) with the accept link.
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[0].body).group(0)
    assert link.startswith(f"{live_server.url}{a.prefix}/invite/")

    # The invitee opens it in a fresh browser (no session), sets a name and a password.
    invitee_context = browser.new_context()
    try:
        invitee = invitee_context.new_page()
        invitee.goto(link)
        expect(invitee.get_by_role("heading", level=1)).to_have_text("Join Studio A")
        invitee.get_by_label("Your name").fill("Sam Staff")
        invitee.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
        invitee.get_by_label("Password again").fill(NEW_PASSWORD)
        invitee.get_by_role("button", name="Create account and join").click()

        # They land on the dashboard as a staff member of the studio.
        expect(invitee).to_have_url(studio_url)
        expect(invitee.get_by_role("heading", level=1)).to_have_text("Studio A")
        expect(invitee.locator(".messages")).to_contain_text("Welcome to Studio A!")
        expect(invitee.locator(".studio-hero")).to_contain_text("Staff")
        expect(invitee.locator(".account-menu summary")).to_contain_text("Sam")
        expect(invitee.get_by_role("link", name="Invite someone")).to_have_count(0)
    finally:
        invitee_context.close()

    user = User.objects.get(email="new.staff@example.com")
    assert user.full_name == "Sam Staff" and user.check_password(NEW_PASSWORD)
    with tenant_context(a.studio):
        assert Membership.objects.get(user=user).role == Role.STAFF

    # Back in the owner's browser, the new member is listed and the invitation is no longer pending.
    page.reload()
    expect(page.locator(".members-table")).to_contain_text("new.staff@example.com")
    expect(page.locator(".invitations-table")).to_have_count(0)


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def test_a_new_studio_signs_up_on_a_phone_confirms_and_works_through_its_checklist(
    live_server, browser: Browser, settings, fake_stripe: Any
):
    settings.SIGNUP_TRIAL_CREDITS = 25
    fake_stripe.connect_webhook_url = f"{live_server.url}/stripe/connect-webhook/"
    dashboard = f"{live_server.url}/s/atelier-lumiere/"
    context = browser.new_context(**PHONE, bypass_csp=True)  # axe-core is injected as an inline script
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/")
        page.get_by_role("link", name="Create your studio").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Create your studio")
        assert not serious_violations(page), describe(serious_violations(page))
        page.get_by_label("Studio name").fill("Atelier Lumière")
        page.get_by_label("Your studio's address").fill("atelier-lumiere")
        page.get_by_label("Your name").fill("Camille Martin")
        page.get_by_label("Your email").fill("camille@atelier.example")
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Create my studio").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

        link = re.search(r"https?://\S+/signup/confirm/\S+/", mail.outbox[-1].body).group(0)
        page.goto(link)
        page.get_by_role("button", name="Create my studio").click()
        expect(page).to_have_url(re.compile(r"/s/atelier-lumiere/\?welcome=1$"))
        checklist = page.locator(".onboarding")
        expect(checklist).to_contain_text("Welcome! Get your studio ready")
        expect(checklist).to_contain_text("0 of 4 done")
        assert not serious_violations(page), describe(serious_violations(page))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the dashboard is {width}px wide on a 390px phone"

        # Make it yours: the colour is previewed before it is saved, then the step is done.
        checklist.get_by_role("link", name="Make it yours").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Branding")
        # The preview's script listens from DOMContentLoaded: a colour typed before that is not previewed (a race
        # that failed this test once), so wait for it, then for the preview to follow.
        page.wait_for_load_state("domcontentloaded")
        page.get_by_label("Accent colour").fill("#0f766e")
        page.wait_for_function(
            "() => getComputedStyle(document.getElementById('branding-preview')).getPropertyValue('--brand').trim()"
            " === '#0f766e'",
            timeout=5_000,
        )
        page.get_by_label("Watermark text").fill("Atelier L.")
        expect(page.locator("#branding-preview-watermark")).to_have_text("Atelier L.")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_contain_text("Your branding is saved.")
        page.goto(dashboard)
        expect(page.locator(".onboarding")).to_contain_text("1 of 4 done")

        # Add your first client, with the consent collected in person.
        page.locator(".onboarding").get_by_role("link", name="Add your first client").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Add a client")
        page.get_by_label("Name", exact=True).fill("Léa Dubois")
        page.get_by_label("Email", exact=True).fill("lea@example.com")
        page.get_by_label("Consent collected in person").check()
        page.get_by_role("button", name="Add client").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Léa Dubois")
        page.goto(dashboard)
        expect(page.locator(".onboarding")).to_contain_text("2 of 4 done")

        # Publish your first template: a starter style copied to the catalogue, then published.
        page.locator(".onboarding").get_by_role("link", name="Publish your first template").click()
        page.get_by_role("button", name="Copy to my catalog").first.click()
        expect(page.locator(".messages")).to_contain_text("was copied to your catalog as a draft")
        page.get_by_role("button", name="Publish", exact=True).click()
        expect(page.get_by_role("button", name="Unpublish")).to_be_visible()
        page.goto(dashboard)
        expect(page.locator(".onboarding")).to_contain_text("3 of 4 done")

        # Set up payments: Stripe's onboarding (the fake Stripe's page), then its Connect webhook turns them on.
        page.locator(".onboarding").get_by_role("link", name="Set up payments").click()
        page.get_by_role("button", name="Set up payments with Stripe").click()
        expect(page).to_have_url(re.compile(rf"^{re.escape(fake_stripe.base_url)}/onboard/acct_"))
        page.get_by_role("button", name="Submit").click()
        expect(page).to_have_url(re.compile(r"/s/atelier-lumiere/billing/prices/\?connect=return$"))
        expect(page.locator('[data-connect-status="enabled"]')).to_be_visible()

        # Every step done: the checklist makes way for the dashboard itself.
        page.goto(dashboard)
        expect(page.get_by_role("heading", level=1)).to_have_text("Atelier Lumière")
        expect(page.locator(".onboarding")).to_have_count(0)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the dashboard is {width}px wide on a 390px phone"
    finally:
        context.close()

    with platform_context():
        studio = Studio.objects.get(slug="atelier-lumiere")
    assert (studio.primary_color, studio.watermark_text) == ("#0f766e", "Atelier L.")
    with tenant_context(studio):
        assert credits.balance() == 25
        assert Client.objects.get().consent_method == Client.ConsentMethod.STAFF
        assert Template.objects.get().status == Template.Status.PUBLISHED
        assert StudioBilling.objects.get().charges_enabled
