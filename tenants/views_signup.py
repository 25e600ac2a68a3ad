"""Self-serve sign-up pages on the platform host (tenants/signup.py): the form, "check your email", and the
confirmation (a page with a button: the studio is created by the POST only)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from tenants import ratelimits, signup
from tenants.forms import SignupForm
from tenants.refusals import Refused
from tenants.views import studio_path

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
ADDRESS_GROUP = "tenants.signup.address"
EMAIL_GROUP = "tenants.signup.email"


def _limited(request: HttpRequest, *, email: str) -> int | None:
    """Seconds to wait when this address or this email has asked too often (both counted on every try); None
    when it may go on."""
    checks = [
        (ADDRESS_GROUP, ratelimits.address_bucket(request), ratelimits.rate_setting("SIGNUP_ADDRESS_RATE", "5/1h")),
    ]
    if email:
        checks.append((EMAIL_GROUP, email, ratelimits.rate_setting("SIGNUP_EMAIL_RATE", "3/1d")))
    wait = None
    for group, value, rate in checks:
        usage = ratelimits.usage(request, group, value, rate, increment=True)
        if usage is None:
            continue  # RATELIMIT_ENABLE off
        if usage["limit"] == 0 or usage["should_limit"]:  # over the limit, or the cache failed (closed)
            wait = max(wait or 0, int(usage["time_left"]) or 60)
    return wait


@never_cache
@csrf_protect
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def signup_page(request: HttpRequest) -> HttpResponse:
    if not getattr(settings, "SIGNUP_ENABLED", True):
        return render(request, "tenants/signup_closed.html", status=403)
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method != "POST":
        return render(request, "tenants/signup.html", {"form": form})
    email = (request.POST.get("email") or "").strip().lower()[:254]
    wait = _limited(request, email=email)
    if wait is not None:
        minutes = max(1, round(wait / 60))
        context = {
            "form": form,
            "limited": _("Too many sign-ups from here. Please try again in %(minutes)s min.") % {"minutes": minutes},
        }
        return render(request, "tenants/signup.html", context, status=429)
    if form.is_bot:  # the honeypot: answered as if it worked, nothing stored, nothing sent
        return render(request, "tenants/signup_sent.html", {"email": email})
    if not form.is_valid():
        return render(request, "tenants/signup.html", {"form": form}, status=400)
    data = form.cleaned_data
    try:
        signup.request_signup(
            studio_name=data["studio_name"],
            slug=data["slug"],
            email=data["email"],
            full_name=data["full_name"],
            password=data["password"],
            base_url=request.build_absolute_uri("/"),
            ip_address=ratelimits.client_ip(request) if ratelimits.client_ip(request) != "unknown" else None,
        )
    except signup.SignupRefused as exc:
        form.add_error("slug" if exc.code == "slug_unavailable" else None, exc.message)
        return render(request, "tenants/signup.html", {"form": form}, status=exc.status)
    return render(request, "tenants/signup_sent.html", {"email": data["email"]})


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        pending = signup.signup_from_link(token)
    except Refused as exc:
        return render(request, "tenants/signup_invalid.html", {"message": exc.message}, status=exc.status)
    if request.method != "POST":
        return render(request, "tenants/signup_confirm.html", {"signup": pending})
    try:
        studio, user = signup.confirm_signup(signup=pending)
    except Refused as exc:
        return render(request, "tenants/signup_invalid.html", {"message": exc.message}, status=exc.status)
    login(request, user, backend=MODEL_BACKEND)
    return redirect(f"{studio_path(studio.slug)}?welcome=1")
