"""Template helpers for studio pages: links to pages that may not be installed, brand colours, money."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency
from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.translation import get_language, to_locale

from tenants.i18n import client_date as _client_date

register = template.Library()

_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


@register.simple_tag
def optional_url(name: str, *args: Any, **kwargs: Any) -> str:
    """Like {% url %}, but an empty string when the page doesn't exist (yet): navigation can name pages that
    other parts of the project provide."""
    try:
        return reverse(name, args=args or None, kwargs=kwargs or None)
    except NoReverseMatch:
        return ""


@register.filter
def brand_contrast(color: str) -> str:
    """Black or white text, whichever reads better on the brand colour (WCAG relative luminance)."""
    match = _HEX.match(color or "")
    if not match:
        return "#ffffff"
    value = match.group(1)

    def channel(i: int) -> float:
        c = int(value[i : i + 2], 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    return "#111827" if luminance > 0.179 else "#ffffff"


@register.filter
def safe_brand(color: str) -> str:
    """The studio colour when it is a valid #rrggbb value (it becomes a CSS custom property), else the default."""
    return color if _HEX.match(color or "") else "#1f2937"


@register.filter
def money(amount: Any, currency: Any = "") -> str:
    """An amount with its currency, the way the active language writes it (babel, CLDR data): `{{ price|money:"eur"
    }}` is "€12.50" in English, "12,50 €" in French, "€12.50" in Chinese; "$12.50" and "CN¥88.00" in English,
    "¥88.00" in Chinese. Without a currency (or one babel doesn't know) "12.50 XYZ": two decimals and the code.
    Empty for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(amount)
    code = str(currency or "").strip().upper()
    if code:
        try:
            return format_currency(value, code, locale=to_locale(get_language() or "en"))
        except (ValueError, LookupError):  # an unknown currency or locale: the plain form below
            pass
    return f"{value} {code}" if code else f"{value}"


@register.filter
def client_date(value: Any, arg: str = "") -> str:
    """`{{ expires_at|client_date }}`: the date in the client's language (tenants/i18n.py); `:"time"` adds the
    time."""
    return _client_date(value, with_time=arg == "time")


@register.simple_tag(takes_context=True)
def client_language_links(context: template.Context, fallback: str = "") -> list[dict[str, Any]]:
    """The client pages' language switcher: each language of settings.LANGUAGES in its own name, with the link
    that picks it (this page again with `?lang=`; after a POST, `fallback`, a page that answers GET)."""
    from django.conf import settings
    from django.utils.translation import get_language, get_language_info

    request = context.get("request")
    base = request.path if request is not None and request.method in ("GET", "HEAD") else ""
    base = base or fallback or ""
    current = get_language()
    links = []
    for code, _name in settings.LANGUAGES:
        links.append(
            {
                "code": code,
                "name": get_language_info(code)["name_local"],
                "url": f"{base}?lang={code}",
                "current": code == current,
            }
        )
    return links


@register.filter
def initials(name: str) -> str:
    words = [w for w in (name or "").split() if w]
    return "".join(w[0] for w in words[:2]).upper() or "?"


@register.filter
def duration(value: Any) -> str:
    """A timedelta as words: "15 minutes", "1 hour", "2 hours 30 minutes"."""
    try:
        seconds = int(value.total_seconds())
    except AttributeError:
        return ""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes = -(-rest // 60)  # round up: never promise less waiting than there is
    if minutes == 60:
        hours, minutes = hours + 1, 0
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not parts:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


# A page of this site named inside a message for people: "... on the billing page: /s/lumiere/billing/".
_SITE_PATH = re.compile(r"(?<![\w/.:])(/(?:[\w.-]+/)+)(?=[\s.,;)]|$)")


@register.filter(needs_autoescape=True)
def link_paths(text: Any, autoescape: bool = True) -> str:
    """Escape `text`, then turn the site paths it names ("/s/studio/billing/") into links. Only paths that start
    and end with a slash, standing on their own, are linked; everything else stays plain (escaped) text."""
    from django.utils.html import conditional_escape, format_html
    from django.utils.safestring import SafeString

    raw = str(text)
    out = SafeString("")
    last = 0
    for match in _SITE_PATH.finditer(raw):
        out += conditional_escape(raw[last : match.start()])
        out += format_html('<a href="{}">{}</a>', match.group(1), match.group(1))
        last = match.end()
    return out + conditional_escape(raw[last:])


@register.filter
def subject_slot(number: Any) -> str:
    """`{{ 2|subject_slot }}` → "{subject_2}": how a template's prompt names person 2 of a group (not text to
    translate: the prompt's own placeholder)."""
    return "{subject_" + str(number) + "}"
