"""The language of the pages a studio's clients see (galleries, the self-upload link, consent, the gallery's cart).

The language in force is the client's own choice (the switcher on the page: `?lang=fr`, then remembered in the
CLIENT_LANGUAGE_COOKIE cookie), else the studio's default (Studio.client_language, set on the branding page), else
English. Only views marked `@client_facing` switch to the client's language. Emails to a client are rendered under
`translation.override(client_language_of(studio))`.

The studio's own pages (and the platform's: sign-in, sign-up) are in the language of the person reading them: their
saved choice (User.language, set with the switcher in the account menu, `set_language` below), else the language
cookie (the switcher, for someone not signed in), else the browser's Accept-Language (Django's LocaleMiddleware),
else English.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils import formats, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

V = TypeVar("V", bound=Callable[..., Any])

CLIENT_LANGUAGE_COOKIE = "client_language"
CLIENT_LANGUAGE_COOKIE_AGE = 365 * 24 * 3600


def supported_language(code: Any) -> str | None:
    """`code` when it is one of settings.LANGUAGES (case-insensitive), else None."""
    if not isinstance(code, str) or not code:
        return None
    wanted = code.strip().lower()
    for known, _name in settings.LANGUAGES:
        if known.lower() == wanted:
            return known
    return None


def client_language_of(studio: Any) -> str:
    """The studio's default language for its clients (English when unset or no longer offered)."""
    return supported_language(getattr(studio, "client_language", None)) or "en"


def client_language_for(request: HttpRequest) -> tuple[str, str | None]:
    """(the language in force for this client request, the language the client just chose or None)."""
    chosen = supported_language(request.GET.get("lang"))
    remembered = supported_language(request.COOKIES.get(CLIENT_LANGUAGE_COOKIE))
    studio = getattr(request, "studio", None)
    return chosen or remembered or client_language_of(studio), chosen


def client_facing(view: V) -> V:
    """Run a client's page in the client's language: activate it for the view and the rendering of its answer,
    say it in Content-Language (and `<html lang>` through the templates), remember a choice made with `?lang=`."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        language, chosen = client_language_for(request)
        with translation.override(language):
            request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        response.headers.setdefault("Content-Language", language)
        if chosen:
            response.set_cookie(
                CLIENT_LANGUAGE_COOKIE,
                chosen,
                max_age=CLIENT_LANGUAGE_COOKIE_AGE,
                samesite="Lax",
                httponly=True,
                secure=request.is_secure(),
            )
        return response

    return wrapped  # type: ignore[return-value]


def client_date(value: Any, *, with_time: bool = False) -> str:
    """A date (or date and time) as a client reads it in the active language: "7 December 2026" in English (the
    pages' established form), the locale's own DATE_FORMAT otherwise ("7 décembre 2026", "2026年12月7日")."""
    if value in (None, ""):
        return ""
    english = (translation.get_language() or "en").split("-")[0] == "en"
    if with_time:
        return formats.date_format(value, "j F Y, H:i" if english else "DATETIME_FORMAT")
    return formats.date_format(value, "j F Y" if english else "DATE_FORMAT")


def client_js_catalog(request: HttpRequest, language: str) -> HttpResponse:
    """The translations of the client pages' scripts (static/js/uploader.js, static/galleries/gallery.js) in
    `language`, as Django's JavaScriptCatalog serves them (gettext, ngettext, interpolate): a static-like script
    the page loads before its own (the Content-Security-Policy allows no inline script). The page names its
    language in the URL, so the answer can be cached by language."""
    from django.http import Http404
    from django.views.i18n import JavaScriptCatalog

    code = supported_language(language)
    if code is None:
        raise Http404("No such language.")
    with translation.override(code):
        response = JavaScriptCatalog.as_view(domain="djangojs", packages=[])(request)
    response["Cache-Control"] = "public, max-age=3600"
    return response


API_PATH = re.compile(r"^(?:/s/[^/]+)?/api/")


class StaffLanguageMiddleware:
    """After LocaleMiddleware and authentication: a signed-in person's saved language (User.language) wins over the
    cookie and the browser's. Reads the user only when a session names one (no query for a client's request).
    The REST API answers in English whatever the caller's Accept-Language (an integration's contract, like its
    field names and error codes)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if API_PATH.match(request.path_info):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE  # type: ignore[attr-defined]
            return self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.get("_auth_user_id") is not None:
            user = getattr(request, "user", None)
            saved = supported_language(getattr(user, "language", None)) if user is not None else None
            if saved and user.is_authenticated:
                translation.activate(saved)
                request.LANGUAGE_CODE = translation.get_language()  # type: ignore[attr-defined]
        return self.get_response(request)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language switcher of the studio's and the platform's pages (POST `language`: a code of
    settings.LANGUAGES, or empty for "the browser's"; `next`: where to go back). Saved on the account of a
    signed-in person (every device follows), and in the language cookie for the browser."""
    raw = request.POST.get("language", "")
    code = supported_language(raw) if raw else ""
    if code is None:
        return HttpResponseBadRequest(
            _("Unknown language “%(code)s”: choose one of the languages offered.") % {"code": raw[:20]},
            content_type="text/plain; charset=utf-8",
        )
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = "/"
    response = HttpResponseRedirect(target)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        get_user_model().objects.filter(pk=user.pk).update(language=code)
    if code:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            code,
            max_age=CLIENT_LANGUAGE_COOKIE_AGE,
            samesite="Lax",
            secure=request.is_secure(),
        )
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, samesite="Lax")
    return response
