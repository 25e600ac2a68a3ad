"""Client pages in the client's language (issue 19, part 2): the studio's default (Studio.client_language, the
branding page), the client's own choice (?lang=, remembered in a cookie), `<html lang>` and Content-Language;
the studio's pages stay English; emails in the studio's language; prices and dates per locale."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone, translation

from clients import services as client_services
from clients.models import Photo
from clients.reasons import reason_for_client
from galleries.emails import expiry_reminder_message, gallery_ready_message
from tenants.context import tenant_context
from tenants.i18n import CLIENT_LANGUAGE_COOKIE, client_date
from tenants.models import Studio
from tenants.templatetags.studio_tags import money
from tests.billing.fake_stripe import fake_stripe_fixture  # noqa: F401  (fixture)
from tests.billing.orders_support import shop
from tests.galleries.test_public_support import (  # noqa: F401  (fixtures)
    _fresh_cache,
    make_scene,
    private_storage_fixture,
)

pytestmark = [pytest.mark.django_db]

# English sentences of the client pages: none may be left on a page in another language.
ENGLISH = [
    "Your portraits are private",
    "Skip to content",
    "Download all",
    "Favorites",
    "Swipe or use the arrow keys",
    "Open until",
    "Enter the password",
    "Open my gallery",
    "Upload your photos",
    "No sunglasses",
    "Choose photos",
    "Agree and continue",
    "I have read and agree",
    "Consent text version",
    "Your photos",
]


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _lang(response: Any) -> str:
    found = re.search(r'<html lang="([^"]+)"', response.content.decode())
    assert found, "no <html lang>"
    return found.group(1)


def _no_english(page: str) -> None:
    left = [sentence for sentence in ENGLISH if sentence in page]
    assert left == []


def _set_language(studio: Studio, code: str) -> None:
    Studio.objects.filter(pk=studio.pk).update(client_language=code)


@pytest.fixture
def scene(tenant_a: Any, private_storage: Any) -> Any:
    return make_scene(tenant_a, count=2)


def test_english_by_default(client: Any, scene: Any) -> None:
    response = client.get(scene.url)
    assert response.status_code == 200 and _lang(response) == "en" and response["Content-Language"] == "en"
    page = _text(response)
    assert "Your portraits are private" in page and "2 portraits" in page
    assert 'href="' + scene.url + '?lang=fr"' in response.content.decode()  # the switcher


def test_the_studio_default_language_serves_the_gallery_in_french(client: Any, scene: Any) -> None:
    _set_language(scene.tenant.studio, "fr")
    response = client.get(scene.url)
    assert response.status_code == 200 and _lang(response) == "fr" and response["Content-Language"] == "fr"
    page = _text(response)
    assert "Vos portraits sont privés\u00a0: seules les personnes" in page
    assert "2 portraits" in page and "Tout télécharger" not in page  # nothing entitled here
    assert re.search(r"Ouverte jusqu’au \d+ \w+ \d{4}", page)  # a French date
    assert 'lang="zh-hans"' in response.content.decode() and "简体中文" in page  # the switcher, in its own words
    _no_english(page)
    assert "/jsi18n/fr/" in page  # the scripts' words in French
    assert CLIENT_LANGUAGE_COOKIE not in response.cookies  # the default is not a choice


def test_the_client_choice_wins_and_is_remembered_in_a_cookie(client: Any, scene: Any) -> None:
    _set_language(scene.tenant.studio, "fr")
    chosen = client.get(scene.url + "?lang=zh-hans")
    assert _lang(chosen) == "zh-hans" and "您的肖像是私密的" in _text(chosen)
    cookie = chosen.cookies[CLIENT_LANGUAGE_COOKIE]
    assert cookie.value == "zh-hans" and cookie["httponly"] and cookie["samesite"] == "Lax"
    again = client.get(scene.url)  # the cookie, without the parameter
    assert _lang(again) == "zh-hans"
    _no_english(_text(again))
    portrait = client.get(scene.portrait_url(scene.portraits[0]))
    assert _lang(portrait) == "zh-hans" and "全部肖像" in _text(portrait)
    back = client.get(scene.url + "?lang=en")
    assert _lang(back) == "en" and "Your portraits are private" in _text(back)


def test_an_unknown_language_is_ignored(client: Any, scene: Any) -> None:
    _set_language(scene.tenant.studio, "fr")
    client.cookies[CLIENT_LANGUAGE_COOKIE] = "xx"
    response = client.get(scene.url + "?lang=de")
    assert response.status_code == 200 and _lang(response) == "fr"
    assert CLIENT_LANGUAGE_COOKIE not in response.cookies or response.cookies[CLIENT_LANGUAGE_COOKIE].value == "xx"


def test_password_page_and_its_error_in_the_client_language(client: Any, tenant_a: Any, private_storage: Any) -> None:
    scene = make_scene(tenant_a, count=1, password="sesame")
    _set_language(tenant_a.studio, "fr")
    page = client.get(scene.url)
    assert _lang(page) == "fr" and "Saisissez le mot de passe que Studio A vous a donné" in _text(page)
    _no_english(_text(page))
    wrong = client.post(f"{scene.url}unlock/", {"password": "nope"})
    assert wrong.status_code == 403 and "Ce mot de passe n’est pas le bon" in _text(wrong)


def test_unknown_gallery_page_in_chinese(client: Any, tenant_a: Any) -> None:
    _set_language(tenant_a.studio, "zh-hans")
    response = client.get(f"{tenant_a.prefix}/g/{'x' * 32}/")
    assert response.status_code == 404 and _lang(response) == "zh-hans"
    assert "相册不存在" in _text(response) and "Gallery not found" not in _text(response)


def test_the_studio_pages_stay_english_whatever_the_client_chose(client_a: Any, tenant_a: Any) -> None:
    _set_language(tenant_a.studio, "fr")
    client_a.cookies[CLIENT_LANGUAGE_COOKIE] = "fr"
    response = client_a.get(f"{tenant_a.prefix}/clients/")
    assert response.status_code == 200 and _lang(response) == "en"
    assert translation.get_language() == "en"  # nothing leaks out of a client's request either


@pytest.fixture
def upload_link(tenant_a: Any) -> Any:
    with tenant_context(tenant_a.studio):
        person = client_services.create_client(name="Bea Client", email="bea@example.com", created_by=tenant_a.owner)
        photo_set = client_services.create_photo_set(client=person, created_by=tenant_a.owner)
        return client_services.create_upload_link(photo_set=photo_set, created_by=tenant_a.owner)


def test_the_self_upload_consent_and_upload_pages_in_french(client: Any, tenant_a: Any, upload_link: Any) -> None:
    _set_language(tenant_a.studio, "fr")
    url = f"{tenant_a.prefix}/u/{upload_link.token}/"
    consent_page = client.get(url)
    page = _text(consent_page)
    assert _lang(consent_page) == "fr" and "Bonjour Bea Client" in page and "J’accepte et je continue" in page
    _no_english(page)
    with tenant_context(tenant_a.studio):
        current = client_services.current_consent_text(language="fr")  # the text in the client's language
    assert "J’accepte que le studio utilise les photos" in page
    missing = client.post(url, {"consent_text_id": str(current.pk)})
    assert missing.status_code == 400 and "Cochez la case" in _text(missing)
    assert client.post(url, {"agree": "on", "consent_text_id": str(current.pk)}).status_code == 302
    upload_page = client.get(url)
    page = _text(upload_page)
    assert "Envoyez vos photos" in page and "Ni lunettes de soleil" in page
    _no_english(page)
    assert "/jsi18n/fr/" in page


def test_the_self_upload_page_in_chinese_by_the_client_choice(client: Any, tenant_a: Any, upload_link: Any) -> None:
    url = f"{tenant_a.prefix}/u/{upload_link.token}/"
    page = client.get(url + "?lang=zh-hans")
    assert _lang(page) == "zh-hans" and "同意并继续" in _text(page)
    invalid = client.get(f"{tenant_a.prefix}/u/{'y' * 20}/")
    assert invalid.status_code == 404 and "链接不存在" in _text(invalid)  # the cookie holds on the error page


def test_a_refusal_reason_reads_in_the_client_language(client: Any, tenant_a: Any, upload_link: Any) -> None:
    with tenant_context(tenant_a.studio):
        Photo.objects.create(
            photo_set=upload_link.photo_set,
            status=Photo.Status.REJECTED,
            reason_code="blurry",
            reason="This photo is blurry around the face. Use a sharp, in-focus photo.",
            original_name="me.jpg",
        )
    url = f"{tenant_a.prefix}/u/{upload_link.token}/photos/"
    assert "This photo is blurry around the face" in _text(client.get(url))
    french = _text(client.get(url + "?lang=fr"))
    assert "Cette photo est floue au niveau du visage" in french and "Refusée" in french
    with translation.override("zh-hans"):
        assert reason_for_client(code="unknown_code", message="Whatever.") == "这张照片无法使用，请换一张上传。"
    with translation.override("en"):
        assert reason_for_client(code="blurry", message="Exact English.") == "Exact English."


def test_the_script_catalogue_by_language(client: Any, tenant_a: Any) -> None:
    french = client.get(f"{tenant_a.prefix}/jsi18n/fr/")
    assert french.status_code == 200 and french["Content-Type"].startswith("text/javascript")
    assert "R\\u00e9essayer" in french.content.decode() or "Réessayer" in french.content.decode()
    assert client.get(f"{tenant_a.prefix}/jsi18n/de/").status_code == 404


def test_the_owner_picks_the_clients_language_on_the_branding_page(client_a: Any, tenant_a: Any) -> None:
    page = client_a.get(f"{tenant_a.prefix}/branding/")
    assert 'name="client_language"' in page.content.decode()
    data = {"primary_color": "#0f766e", "watermark_text": "", "client_language": "zh-hans"}
    assert client_a.post(f"{tenant_a.prefix}/branding/", data).status_code == 302
    tenant_a.studio.refresh_from_db()
    assert tenant_a.studio.client_language == "zh-hans"
    bad = client_a.post(f"{tenant_a.prefix}/branding/", {**data, "client_language": "de"})
    assert bad.status_code == 400
    tenant_a.studio.refresh_from_db()
    assert tenant_a.studio.client_language == "zh-hans"


def test_gallery_emails_in_the_studio_language(tenant_a: Any, private_storage: Any) -> None:
    scene = make_scene(tenant_a, count=1, password="sesame")
    _set_language(tenant_a.studio, "fr")
    studio = Studio.objects.get(pk=tenant_a.studio.pk)
    with tenant_context(studio):
        ready = gallery_ready_message(gallery=scene.gallery, studio=studio, link="https://x.example/g/t/")
        reminder = expiry_reminder_message(gallery=scene.gallery, studio=studio, link="https://x.example/g/t/")
    assert ready.subject == "Studio A\u00a0: votre galerie «\u00a0Spring portraits\u00a0» est prête"
    assert "Bonjour Ada Client," in ready.body and "mot de passe que Studio A vous a donné" in ready.body
    assert 'lang="fr"' in ready.alternatives[0][0] and "Ouvrir ma galerie" in ready.alternatives[0][0]
    assert "ferme le" in reminder.subject and "Petit rappel de Studio A" in reminder.body
    assert re.search(r"dans \d+ jours", reminder.body)
    assert translation.get_language() == "en"
    _set_language(tenant_a.studio, "zh-hans")
    studio.refresh_from_db()
    with tenant_context(studio):
        ready = gallery_ready_message(gallery=scene.gallery, studio=studio, link="https://x.example/g/t/")
    assert ready.subject == "Studio A：您的相册“Spring portraits”已就绪"


def test_the_upload_link_email_in_the_studio_language(
    client_a: Any, tenant_a: Any, upload_link: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _set_language(tenant_a.studio, "fr")
    photo_set = upload_link.photo_set
    send = f"{tenant_a.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/links/{upload_link.pk}/send/"
    with django_capture_on_commit_callbacks(execute=True):
        assert client_a.post(send, {"email": "bea@example.com"}).status_code == 302
    message = mail.outbox[-1]
    assert message.subject == "Studio A\u00a0: envoyez vos photos"
    assert "Bonjour Bea Client," in message.body and "Le lien est valable jusqu’au" in message.body


@pytest.mark.parametrize(
    ("language", "amount", "currency", "expected"),
    [
        ("en", "12.5", "eur", "€12.50"),
        ("en", "12.5", "usd", "$12.50"),
        ("en", "19800", "eur", "€19,800.00"),
        ("en", "88", "cny", "CN¥88.00"),
        ("fr", "12.5", "eur", "12,50\u00a0€"),
        ("fr", "1234.5", "eur", "1\u202f234,50\u00a0€"),
        ("zh-hans", "88", "cny", "¥88.00"),
        ("zh-hans", "12.5", "usd", "US$12.50"),
        ("fr", "12.5", "", "12.50"),
    ],
)
def test_money_per_locale(language: str, amount: str, currency: str, expected: str) -> None:
    with translation.override(language):
        assert money(Decimal(amount), currency) == expected


def test_dates_per_locale() -> None:
    when = timezone.datetime(2026, 12, 7, 15, 30, tzinfo=timezone.get_current_timezone())
    with translation.override("en"):
        assert client_date(when) == "7 December 2026"
    with translation.override("fr"):
        assert client_date(when) == "7 décembre 2026"
    with translation.override("zh-hans"):
        assert client_date(when) == "2026年12月7日"


def test_the_cart_prices_read_in_the_client_language(client: Any, tenant_a: Any, fake_stripe: Any) -> None:
    scene = shop(tenant_a, fake_stripe)
    english = _text(client.get(scene.url))
    assert 'id="buy-form"' in english and "€9.90 per portrait" in english
    french = client.get(scene.url + "?lang=fr")
    assert "9,90\u00a0€ le portrait, en pleine résolution" in _text(french)
    assert 'data-one="{n} portrait" data-many="{n} portraits"' in french.content.decode()
    assert "Payer" in _text(french)
    chinese = _text(client.get(scene.url + "?lang=zh-hans"))
    assert "每张 €9.90" in chinese


def test_the_consent_text_per_language_and_the_consent_records_which(
    client: Any, client_a: Any, tenant_a: Any, upload_link: Any
) -> None:
    """A French client reads the French text (its own versions) and the consent points at it: language and
    version; the English text and its versions are untouched."""
    from clients.models import Client as ClientModel
    from clients.models import ConsentText

    with tenant_context(tenant_a.studio):
        english = client_services.current_consent_text()
        french_v1 = client_services.current_consent_text(language="fr")
        assert (english.language, english.version, french_v1.language, french_v1.version) == ("en", 1, "fr", 1)
        assert french_v1.body.startswith("J’accepte que le studio")
        french_v2 = client_services.publish_consent_text(
            body="Texte révisé du studio.", created_by=tenant_a.owner, language="fr"
        )
        assert french_v2.version == 2 and client_services.current_consent_text().pk == english.pk
        assert client_services.current_consent_text(language="de").pk == english.pk  # not offered: English
    url = f"{tenant_a.prefix}/u/{upload_link.token}/"
    page = _text(client.get(url + "?lang=fr"))
    assert "Texte révisé du studio." in page and "Texte de consentement, version 2" in page
    stale = client.post(url, {"agree": "on", "consent_text_id": str(english.pk)})
    assert stale.status_code == 409  # the English text, while the client reads French
    assert client.post(url, {"agree": "on", "consent_text_id": str(french_v2.pk)}).status_code == 302
    with tenant_context(tenant_a.studio):
        person = ClientModel.objects.select_related("consent_text").get(pk=upload_link.photo_set.client_id)
        assert (person.consent_text.language, person.consent_text.version) == ("fr", 2)
        assert ConsentText.objects.filter(language="en").count() == 1

    # The studio's page edits one language at a time.
    staff = client_a.get(f"{tenant_a.prefix}/clients/consent-text/?language=fr")
    assert staff.status_code == 200 and "Texte révisé du studio." in _text(staff) and _lang(staff) == "en"
    published = client_a.post(
        f"{tenant_a.prefix}/clients/consent-text/", {"language": "zh-hans", "body": "工作室的同意书。"}
    )
    assert published.status_code == 302 and published["Location"].endswith("?language=zh-hans")
    with tenant_context(tenant_a.studio):
        chinese = client_services.current_consent_text(language="zh-hans")
        assert (chinese.version, chinese.body) == (2, "工作室的同意书。")  # v1 was the default Chinese text
    detail = _text(client_a.get(f"{tenant_a.prefix}/clients/{person.pk}/"))
    assert "Version 2 (Français)" in detail


def test_a_refused_upload_answers_in_the_client_language(client: Any, tenant_a: Any, upload_link: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    with tenant_context(tenant_a.studio):
        current = client_services.current_consent_text(language="fr")
    url = f"{tenant_a.prefix}/u/{upload_link.token}/"
    assert client.post(url + "?lang=fr", {"agree": "on", "consent_text_id": str(current.pk)}).status_code == 302
    headers = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}
    not_a_photo = SimpleUploadedFile("notes.pdf", b"%PDF-1.4 not a photo", content_type="application/pdf")
    answer = client.post(url + "upload/", {"files": not_a_photo}, headers=headers)
    assert answer.status_code == 201
    (entry,) = answer.json()["files"]
    assert entry["status"] == "rejected" and entry["status_label"] == "Refusée"
    assert entry["reason"] == "Ce type de fichier n’est pas accepté\u00a0: envoyez une photo JPEG, PNG, WebP ou HEIC."
    empty = client.post(url + "upload/", {}, headers=headers)
    assert empty.status_code == 400 and empty.json()["error"]["message"] == "Choisissez au moins une photo à envoyer."


# --- The studio's own pages in the staff member's language (generation and galleries) -------------------------


@pytest.fixture
def studio_run(tenant_a: Any, private_storage: Any) -> Any:
    """A client with a gallery of two portraits, and a client run of their digital double."""
    from generation.models import RenderRun

    scene = make_scene(tenant_a, count=2)
    with tenant_context(tenant_a.studio):
        run = RenderRun.objects.create(double=scene.double, images=2, gpu_seconds=3.5, created_by=tenant_a.owner)
    return scene, run


def _studio_page(client_a: Any, url: str, language: str) -> str:
    client_a.cookies["django_language"] = language
    response = client_a.get(url)
    assert response.status_code == 200
    return _text(response)


def test_the_run_pages_in_french_and_chinese(client_a: Any, tenant_a: Any, studio_run: Any) -> None:
    _scene, run = studio_run
    runs = f"{tenant_a.prefix}/runs/"
    english = _studio_page(client_a, runs, "en")
    assert "<h1>Render runs</h1>" in english and f"Run #{run.pk}" in english
    french = _studio_page(client_a, runs, "fr")
    assert "<h1>Séries de rendu</h1>" in french and f"Série n° {run.pk}" in french and "Séries récentes" in french
    assert "Render runs" not in french and "Recent runs" not in french
    chinese = _studio_page(client_a, runs, "zh-hans")
    assert "<h1>渲染批次</h1>" in chinese and f"批次 #{run.pk}" in chinese and "最近的批次" in chinese
    assert "Render runs" not in chinese
    detail = _studio_page(client_a, f"{runs}{run.pk}/", "fr")
    assert (
        f"Série n° {run.pk}" in detail and "Temps GPU estimé" in detail and "Créer une galerie à partir des" in detail
    )
    assert "Estimated GPU time" not in detail and "About this run" not in detail
    detail = _studio_page(client_a, f"{runs}{run.pk}/", "zh-hans")
    assert "预计 GPU 时间" in detail and "用精选创建相册" in detail and "Estimated GPU time" not in detail


def test_the_double_page_in_french_and_chinese(client_a: Any, tenant_a: Any, studio_run: Any) -> None:
    scene, _run = studio_run
    url = f"{tenant_a.prefix}/doubles/{scene.double.pk}/"
    french = _studio_page(client_a, url, "fr")
    assert f"Double numérique n° {scene.double.pk}" in french and "Modèle de base" in french
    assert "Ressemblance" in french and "Séries de rendu" in french and "Rendu d’essai" in french
    assert "Digital double #" not in french and "Base model" not in french and "Test render" not in french
    chinese = _studio_page(client_a, url, "zh-hans")
    assert f"数字分身 #{scene.double.pk}" in chinese and "基础模型" in chinese and "相似度" in chinese
    assert "Digital double #" not in chinese and "Base model" not in chinese


def test_the_studio_gallery_page_in_french_and_chinese(client_a: Any, tenant_a: Any, studio_run: Any) -> None:
    scene, _run = studio_run
    url = f"{tenant_a.prefix}/galleries/{scene.gallery.pk}/"
    french = _studio_page(client_a, url, "fr")
    assert "Téléchargements autorisés au client" in french and "Copier le lien" in french
    assert "Ouverte jusqu’au" in french and "Statistiques" in french and "Brouillon" in french
    assert "Downloads the client may make" not in french and "Statistics" not in french and "Copy link" not in french
    chinese = _studio_page(client_a, url, "zh-hans")
    assert "客户可进行的下载" in chinese and "复制链接" in chinese and "统计" in chinese
    assert "Downloads the client may make" not in chinese and "Statistics" not in chinese
    listing = _studio_page(client_a, f"{tenant_a.prefix}/galleries/", "fr")
    assert "Toutes les galeries" in listing and "Spring portraits" in listing and "All galleries" not in listing


# --- The studio's own pages in the staff member's language (LocaleMiddleware, the `django_language` cookie) -------


def _staff_page(client_a: Any, url: str, language: str) -> str:
    client_a.cookies["django_language"] = language
    response = client_a.get(url)
    assert response.status_code == 200
    return _text(response)


def test_the_client_list_and_client_page_in_french_and_chinese(client_a: Any, tenant_a: Any) -> None:
    with tenant_context(tenant_a.studio):
        person = client_services.create_client(name="Bea Client", email="bea@example.com", created_by=tenant_a.owner)
        photo_set_pk = client_services.create_photo_set(client=person, created_by=tenant_a.owner).pk
    english = ["Search clients", "Add a client", "Photo sets", "Messages to the client", "Delete everything about"]
    listing = _staff_page(client_a, f"{tenant_a.prefix}/clients/", "fr")
    assert "Rechercher des clients" in listing and "Ajouter un client" in listing and "Bea Client" in listing
    assert "Nom, e-mail ou téléphone" in listing and "Séries de photos" in listing
    detail = _staff_page(client_a, f"{tenant_a.prefix}/clients/{person.pk}/", "fr")
    assert "Messages au client" in detail and "Tout supprimer sur ce client" in detail
    assert "Collecte des photos" in detail  # a choice label
    photo_set = _staff_page(client_a, f"{tenant_a.prefix}/clients/{person.pk}/sets/{photo_set_pk}/", "fr")
    assert "Préparation" in photo_set and "Lien d’envoi du client" in photo_set and "Readiness" not in photo_set
    assert [s for s in english if s in listing + detail] == []
    listing = _staff_page(client_a, f"{tenant_a.prefix}/clients/", "zh-hans")
    assert "搜索客户" in listing and "添加客户" in listing
    detail = _staff_page(client_a, f"{tenant_a.prefix}/clients/{person.pk}/", "zh-hans")
    assert "发给客户的消息" in detail and "正在收集照片" in detail
    assert [s for s in english if s in listing + detail] == []
    assert "Search clients" in _staff_page(client_a, f"{tenant_a.prefix}/clients/", "en")


def test_the_template_list_in_french_and_chinese(client_a: Any, tenant_a: Any) -> None:
    from tests.templates_app.factories import make_template

    with tenant_context(tenant_a.studio):
        template = make_template(tenant_a)
    english = ["Starter catalog", "All categories", "Classic studio portrait", "Price / image", "New template"]
    french = _staff_page(client_a, f"{tenant_a.prefix}/templates/", "fr")
    assert "Catalogue de départ" in french and "Toutes les catégories" in french
    assert "Portrait de studio classique" in french and "Nouveau modèle" in french and "Publié" in french
    assert [s for s in english if s in french] == []
    chinese = _staff_page(client_a, f"{tenant_a.prefix}/templates/", "zh-hans")
    assert "入门模板目录" in chinese and "经典影棚肖像" in chinese and "新建模板" in chinese
    assert [s for s in english if s in chinese] == []
    catalog = _staff_page(client_a, f"{tenant_a.prefix}/templates/starters/", "fr")
    assert "Portrait professionnel d’entreprise" in catalog and "Copier dans mon catalogue" in catalog
    designer = _staff_page(client_a, f"{tenant_a.prefix}/templates/{template.pk}/", "fr")
    assert "Conception" in designer and "Personnes sur l’image" in designer and "Dépublier" in designer
    assert "People in the picture" not in designer and "Live preview" not in designer


# --- The studio's own pages, in the staff member's language (the django_language cookie) ----------------------


def _studio_language(client: Any, code: str) -> None:
    client.cookies["django_language"] = code


def test_the_studio_dashboard_in_french_and_chinese(client_a: Any, tenant_a: Any) -> None:
    english = _text(client_a.get(f"{tenant_a.prefix}/"))
    assert "Needs you now" in english and "Recent activity" in english
    _studio_language(client_a, "fr")
    response = client_a.get(f"{tenant_a.prefix}/")
    assert response.status_code == 200 and response["Content-Language"] == "fr"
    page = _text(response)
    assert "À traiter maintenant" in page and "Activité récente" in page and "Tableau de bord" in page
    assert "Ce mois-ci" in page and "Crédits GPU restants" in page  # billing's panel
    assert "Tâches récentes" in page  # the jobs' panel
    left = [h for h in ["Needs you now", "Recent activity", "This month", "Recent jobs", "Shortcuts"] if h in page]
    assert left == []
    _studio_language(client_a, "zh-hans")
    response = client_a.get(f"{tenant_a.prefix}/")
    assert response["Content-Language"] == "zh-hans"
    page = _text(response)
    assert "待处理事项" in page and "最近动态" in page and "本月" in page and "最近任务" in page
    assert "Needs you now" not in page and "Recent activity" not in page


def test_the_sign_up_page_in_french_and_chinese(client: Any) -> None:
    _studio_language(client, "fr")
    response = client.get("/signup/")
    assert response.status_code == 200 and _lang(response) == "fr"
    page = _text(response)
    assert "Créez votre studio" in page and "Nom du studio" in page and "Créer mon studio" in page
    assert "Vous avez déjà un compte\u00a0?" in page
    assert "Create your studio" not in page and "Studio name" not in page
    _studio_language(client, "zh-hans")
    page = _text(client.get("/signup/"))
    assert "创建您的影楼" in page and "影楼名称" in page and "Create your studio" not in page


def test_the_members_and_jobs_pages_in_french(client_a: Any, tenant_a: Any) -> None:
    _studio_language(client_a, "fr")
    members = _text(client_a.get(f"{tenant_a.prefix}/members/"))
    assert "Invitations en attente" in members and "Propriétaire" in members and "Pending invitations" not in members
    jobs = _text(client_a.get(f"{tenant_a.prefix}/jobs/"))
    assert "Tester la file des tâches" in jobs and "Test the job queue" not in jobs
