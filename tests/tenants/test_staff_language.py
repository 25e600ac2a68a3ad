"""The language of the studio's own pages (issue 19, part 2): the staff member's saved choice, else the language
cookie, else the browser's Accept-Language, else English; the switcher (tenants.i18n.set_language) saves it on the
account and in the cookie. A client's pages keep the client's language whatever the staff member reads."""

from __future__ import annotations

import pytest
from django.conf import settings

from tenants.models import User

pytestmark = pytest.mark.django_db


def _dashboard(client, tenant, **headers):  # noqa: ANN001, ANN202
    return client.get(f"{tenant.prefix}/", **headers)


def test_english_without_a_choice(client_a, tenant_a) -> None:
    response = _dashboard(client_a, tenant_a)
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "en"
    assert '<html lang="en"' in response.content.decode()


def test_the_browsers_language_when_the_person_chose_none(client_a, tenant_a) -> None:
    page = _dashboard(client_a, tenant_a, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5")
    html = page.content.decode()
    assert page.headers["Content-Language"] == "fr"
    assert '<html lang="fr"' in html
    assert "Tableau de bord" in html and "Se déconnecter" in html
    assert "/jsi18n/fr/" in html  # the pages' scripts get their French strings
    chinese = _dashboard(client_a, tenant_a, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans"' in chinese and "工作台" in chinese


def test_the_switcher_saves_the_choice_on_the_account_and_it_wins_over_the_browser(client_a, tenant_a) -> None:
    response = client_a.post(
        f"{tenant_a.prefix}/accounts/language/", {"language": "zh-hans", "next": f"{tenant_a.prefix}/clients/"}
    )
    assert response.status_code == 302 and response["Location"] == f"{tenant_a.prefix}/clients/"
    assert User.objects.get(pk=tenant_a.owner.pk).language == "zh-hans"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    # Another browser (no cookie), asking for English: the account's choice wins.
    client_a.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    page = _dashboard(client_a, tenant_a, HTTP_ACCEPT_LANGUAGE="en")
    assert page.headers["Content-Language"] == "zh-hans" and "退出登录" in page.content.decode()
    # The switcher shows the saved choice.
    assert '<option value="zh-hans" lang="zh-hans" selected>' in page.content.decode()


def test_the_browsers_language_again_clears_the_choice(client_a, tenant_a) -> None:
    User.objects.filter(pk=tenant_a.owner.pk).update(language="fr")
    response = client_a.post(f"{tenant_a.prefix}/accounts/language/", {"language": "", "next": f"{tenant_a.prefix}/"})
    assert response.status_code == 302
    assert User.objects.get(pk=tenant_a.owner.pk).language == ""
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == ""  # deleted
    assert _dashboard(client_a, tenant_a, HTTP_ACCEPT_LANGUAGE="en").headers["Content-Language"] == "en"


def test_an_unknown_language_is_refused_and_nothing_changes(client_a, tenant_a) -> None:
    url = f"{tenant_a.prefix}/accounts/language/"
    response = client_a.post(url, {"language": "klingon"})
    assert response.status_code == 400
    assert response.content.decode() == "Unknown language “klingon”: choose one of the languages offered."
    # Said in the language the person reads (here their saved French), and the saved choice stays.
    User.objects.filter(pk=tenant_a.owner.pk).update(language="fr")
    response = client_a.post(url, {"language": "klingon"})
    assert response.status_code == 400
    nbsp = "\u00a0"
    french = f"Langue inconnue «{nbsp}klingon{nbsp}»{nbsp}: choisissez l’une des langues proposées."
    assert response.content.decode() == french
    assert User.objects.get(pk=tenant_a.owner.pk).language == "fr"


def test_the_switcher_never_sends_the_person_to_another_site(client_a, tenant_a) -> None:
    response = client_a.post(
        f"{tenant_a.prefix}/accounts/language/", {"language": "fr", "next": "https://evil.example/phish"}
    )
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_switcher_needs_a_post(client_a, tenant_a) -> None:
    assert client_a.get(f"{tenant_a.prefix}/accounts/language/?language=fr").status_code == 405


def test_someone_not_signed_in_gets_the_cookie_on_the_platform(client, db) -> None:
    response = client.post("/accounts/language/", {"language": "fr", "next": "/signup/"})
    assert response.status_code == 302 and response["Location"] == "/signup/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert client.get("/signup/").headers["Content-Language"] == "fr"


def test_a_clients_page_keeps_the_clients_language_whatever_the_staff_reads(client_a, tenant_a) -> None:
    """The self-upload link's "invalid" page (a client page) follows the studio's client language, not the cookie
    or the account language of the staff member who opens it."""
    tenant_a.studio.client_language = "fr"
    tenant_a.studio.save(update_fields=["client_language"])
    User.objects.filter(pk=tenant_a.owner.pk).update(language="zh-hans")
    page = client_a.get(f"{tenant_a.prefix}/u/not-a-valid-token/")
    assert page.headers["Content-Language"] == "fr"


def test_the_api_answers_in_english_whatever_the_caller_asks(client_a, tenant_a) -> None:
    User.objects.filter(pk=tenant_a.owner.pk).update(language="fr")
    response = client_a.get(f"{tenant_a.prefix}/api/clients/999999/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 404
    assert response.headers["Content-Language"] == "en"
    # DRF's own "Not found." has a French translation ("Pas trouvé."): the API doesn't use it.
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
    page = client_a.get(f"{tenant_a.prefix}/clients/", HTTP_ACCEPT_LANGUAGE="fr")
    assert page.headers["Content-Language"] == "fr"  # the pages still follow the person
