"""The one place the official `stripe` library is configured: the secret key and the API base (a setting, so the
tests point it at a local fake on loopback), read at call time. Every call that creates something passes an
idempotency key (see `idempotency_key`)."""

from __future__ import annotations

import hashlib
from typing import Any

import stripe
from django.conf import settings
from django.utils.translation import gettext, gettext_noop

DEFAULT_SECRET_KEY = "sk_test_local"


def secret_key() -> str:
    return str(getattr(settings, "STRIPE_SECRET_KEY", "") or DEFAULT_SECRET_KEY)


def api_base() -> str:
    """STRIPE_API_BASE, or Stripe's own API when empty."""
    return str(getattr(settings, "STRIPE_API_BASE", "") or "") or "https://api.stripe.com"


def is_configured() -> bool:
    """Whether the platform can talk to Stripe: a secret key, or an API base of a local fake (localstripe, the
    tests' fake server, which take any key). Without either nothing is sent, and pages say what to set."""
    key = str(getattr(settings, "STRIPE_SECRET_KEY", "") or "")
    return bool(key) or bool(getattr(settings, "STRIPE_API_BASE", ""))


#: What the operator sets to turn payments on (shown to the studio's owners and managers, see docs/billing.md); English
#: here, translated where it is shown (`gettext(SETUP_HINT)`).
SETUP_HINT = gettext_noop(
    "Payments aren't set up on this platform yet: the operator sets STRIPE_SECRET_KEY (and the webhook secrets "
    "STRIPE_WEBHOOK_SECRET and STRIPE_CONNECT_WEBHOOK_SECRET) and restarts the site. See docs/billing.md."
)


class NotConfigured(Exception):
    """Stripe is not configured: nothing was sent. The message says what to set."""

    def __init__(self, message: str = SETUP_HINT) -> None:
        message = gettext(message)
        super().__init__(message)
        self.message = message


def require_configured() -> None:
    if not is_configured():
        raise NotConfigured()


def webhook_secret() -> str:
    return str(getattr(settings, "STRIPE_WEBHOOK_SECRET", "") or "")


def connect_webhook_secret() -> str:
    return str(getattr(settings, "STRIPE_CONNECT_WEBHOOK_SECRET", "") or "")


def client() -> Any:
    """The `stripe` module, configured from the settings of this moment (cheap: three attribute writes)."""
    stripe.api_key = secret_key()
    stripe.api_base = api_base()
    stripe.max_network_retries = int(getattr(settings, "STRIPE_MAX_NETWORK_RETRIES", 2))
    return stripe


def idempotency_key(*parts: Any) -> str:
    """A stable idempotency key for an object created at Stripe: the same action on the same thing gives the same
    key, so a retried call (ours or the library's) never creates a second one."""
    raw = ":".join(str(p) for p in parts)
    return "studio-saas-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


StripeError = stripe.StripeError
