"""Create (idempotently) the demo studio and its owner, and print how to sign in.

Every run sets a fresh random password for the demo owner and prints it, so the login on the console always
works (and an old one printed elsewhere stops working)."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tenants.context import tenant_context
from tenants.models import Membership, Role, Studio, User

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Studio"
DEMO_EMAIL = "owner@demo.example.com"


class Command(BaseCommand):
    help = "Create the demo studio (slug 'demo') with an owner account, and print the login and the URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default=DEMO_EMAIL, help=f"The owner's email (default {DEMO_EMAIL})")
        parser.add_argument("--base-url", default="http://localhost:8000", help="Where the server answers")

    def handle(self, *args: Any, email: str, base_url: str, **options: Any) -> None:
        email = email.strip().lower()
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            studio, created = Studio.objects.get_or_create(
                slug=DEMO_SLUG,
                defaults={"name": DEMO_NAME, "primary_color": "#4f46e5", "contact_email": email},
            )
            if studio.status != Studio.Status.ACTIVE:
                studio.status = Studio.Status.ACTIVE
                studio.save(update_fields=["status"])
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = User.objects.create_user(email, password, full_name="Demo Owner")
            else:
                user.set_password(password)
                user.is_active = True
                user.save(update_fields=["password", "is_active"])
            with tenant_context(studio):
                membership, _ = Membership.objects.get_or_create(user=user, defaults={"role": Role.OWNER})
                if membership.role != Role.OWNER:
                    membership.role = Role.OWNER
                    membership.save(update_fields=["role"])
        self._reset_lockout(email)

        url = f"{base_url.rstrip('/')}/s/{studio.slug}/"
        verb = "Created" if created else "Ready"
        self.stdout.write(self.style.SUCCESS(f"{verb}: {studio.name}"))
        self.stdout.write(f"  URL:      {url}")
        self.stdout.write(f"  Email:    {email}")
        self.stdout.write(f"  Password: {password}")
        self.stdout.write("  (run demo_setup again for a new password)")

    def _reset_lockout(self, email: str) -> None:
        """Failed sign-ins of the demo owner are forgotten, so the printed login works at once."""
        try:
            from axes.utils import reset

            reset(username=email)
        except Exception as exc:  # noqa: BLE001 - the demo login still works once the cool-off is over
            self.stderr.write(f"Could not clear failed sign-ins for {email}: {exc}")
