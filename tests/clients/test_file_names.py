"""Over-long and strange file names through the three doors (the set page, the API, the self-upload link), with
multipart bodies built by hand as a browser or an integration would send them: each file gets its own verdict,
and a request that can't be read at all answers a clear error (JSON when JSON was asked), never Django's bare
HTML 400 and never a 5xx, with nothing already in the set touched."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import multipartparser

from clients import services
from clients.models import Photo, PhotoSet, UploadLink
from clients.uploads import MAX_PART_HEADER_BYTES, UNNAMED, safe_file_name
from jobs.tasks import run_job
from tenants.context import tenant_context
from tests.clients.conftest import fixture_bytes, upload
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}
BOUNDARY = "----StudioTestBoundary7MA4YWxkTrZu0gW"
LONG_NAME = "a" * 996 + ".jpg"  # 1,000 characters
FAR_TOO_LONG = "b" * 9_000 + ".jpg"  # a part header over MAX_PART_HEADER_BYTES


def multipart(*files: tuple[str, bytes], fields: dict[str, str] | None = None) -> bytes:
    """A multipart/form-data body as a browser writes it: UTF-8 file names in quotes, with `"`, CR and LF
    percent-encoded (the HTML standard), every other character (control characters included) as it is."""
    out = b""
    for name, value in (fields or {}).items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, data in files:
        quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        out += (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{quoted}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def post(browser: Any, url: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return browser.post(url, body, content_type=f"multipart/form-data; boundary={BOUNDARY}", headers=headers or {})


def page_url(tenant: Tenant, photo_set: PhotoSet) -> str:
    return f"{tenant.prefix}/clients/{photo_set.client_id}/sets/{photo_set.pk}/upload/"


def api_url(tenant: Tenant, photo_set: PhotoSet) -> str:
    return f"{tenant.prefix}/api/clients/{photo_set.client_id}/photo-sets/{photo_set.pk}/photos/"


def link_url(tenant: Tenant, link: UploadLink) -> str:
    return f"{tenant.prefix}/u/{link.token}/upload/"


def three_photos(long_name: str = LONG_NAME) -> bytes:
    return multipart(
        (long_name, fixture_bytes("person_a_01.jpg")),
        ("IMG_0002.jpg", fixture_bytes("person_a_02.jpg")),
        ("IMG_0003.jpg", fixture_bytes("person_a_03.jpg")),
    )


@pytest.fixture
def link(tenant_a: Tenant, photo_set: PhotoSet) -> UploadLink:
    with tenant_context(tenant_a.studio):
        return services.create_upload_link(photo_set=photo_set, created_by=tenant_a.owner)


@pytest.fixture
def stored(tenant_a: Tenant, photo_set: PhotoSet) -> Photo:
    """A photo already in the set, which no refused request may touch."""
    with tenant_context(tenant_a.studio):
        return services.add_photo(
            photo_set=photo_set, upload=upload(fixture_bytes("person_a_04.jpg"), "kept.jpg"), source="studio"
        )


def assert_shortened(name: str, long_name: str = LONG_NAME) -> None:
    assert len(name) == Photo._meta.get_field("original_name").max_length
    assert name.endswith("….jpg") and long_name.startswith(name[:-5])


def assert_untouched(tenant: Tenant, photo_set: PhotoSet, stored: Photo) -> None:
    with tenant_context(tenant.studio):
        assert list(Photo.objects.filter(photo_set=photo_set).values_list("pk", flat=True)) == [stored.pk]
        kept = Photo.objects.get(pk=stored.pk)
        assert kept.original and kept.original.storage.exists(kept.original.name)
        assert PhotoSet.objects.get(pk=photo_set.pk).validation_job_id == stored.photo_set.validation_job_id


# --- a 1,000-character name: the photo is taken, under a shortened name -----------------------------------------


def test_a_1000_character_name_on_the_set_page(client_a: Any, tenant_a: Tenant, photo_set: PhotoSet):
    """Issue 13, finding 10: a 1,000-character file name sent with two other photos from the set page: three
    answers, the long-named photo stored under a shortened name that keeps its start and its extension."""
    response = post(client_a, page_url(tenant_a, photo_set), three_photos(), JSON)
    assert response.status_code == 201, response.content
    entries = response.json()["files"]
    assert [entry["status"] for entry in entries] == ["pending"] * 3
    assert_shortened(entries[0]["name"])
    assert [entry["name"] for entry in entries[1:]] == ["IMG_0002.jpg", "IMG_0003.jpg"]
    with tenant_context(tenant_a.studio):
        photos = list(Photo.objects.filter(photo_set=photo_set))
    assert len(photos) == 3 and all(photo.original for photo in photos)


def test_a_1000_character_name_through_the_api_is_validated_like_any_photo(
    client_a: Any, tenant_a: Tenant, photo_set: PhotoSet
):
    """Issue 13, finding 10: 1,000 emoji (4 bytes each in UTF-8) as a file name, with two other photos, through
    the API: three rows, and the validation job gives the long-named photo its verdict like the others."""
    long_name = "😀" * 996 + ".jpg"
    response = post(client_a, api_url(tenant_a, photo_set), three_photos(long_name))
    assert response.status_code == 201, response.content
    body = response.json()
    rows = body["photos"]
    assert len(rows) == 3 and [row["status"] for row in rows] == ["pending"] * 3
    assert_shortened(rows[0]["original_name"], long_name)
    assert run_job(body["validation_job_id"], tenant_a.studio.pk) == "succeeded"
    with tenant_context(tenant_a.studio):
        verdicts = {photo.pk: photo.status for photo in Photo.objects.filter(photo_set=photo_set)}
    assert verdicts == {row["id"]: Photo.Status.ACCEPTED for row in rows}


def test_a_1000_character_name_through_the_self_upload_link(
    client: Any, tenant_a: Tenant, photo_set: PhotoSet, link: UploadLink
):
    """Issue 13, finding 10: the client's own link takes the three photos, each with its answer, and counts
    three uploads."""
    response = post(client, link_url(tenant_a, link), three_photos(), JSON)
    assert response.status_code == 201, response.content
    entries = response.json()["files"]
    assert len(entries) == 3 and {entry["status"] for entry in entries} == {"pending"}
    assert_shortened(entries[0]["name"])
    with tenant_context(tenant_a.studio):
        assert UploadLink.objects.get(pk=link.pk).uploads == 3
        assert Photo.objects.filter(photo_set=photo_set).count() == 3


# --- strange names: each file stored safely, with its own row -------------------------------------------------

STRANGE = {
    "ctrl\x01\x1b[31mname\x7f.jpg": "ctrl[31mname.jpg",  # control characters (a terminal escape) dropped
    "../../../etc/passwd.jpg": "passwd.jpg",  # path separators: the last part only
    "C:\\Users\\ada\\Desktop\\me.jpg": "me.jpg",
    "holiday\u202egpj.exe": "holidaygpj.exe",  # a right-to-left override (shows as "holidayexe.jpg") dropped
    "\u2066smile\u2069 \u200b.jpg": "smile .jpg",  # bidi isolates and a zero-width space dropped
    "....": UNNAMED,  # only dots
    "..": UNNAMED,  # Django's parser drops this file without a word
    "\x01\x02\x03": UNNAMED,  # only control characters: dropped by Django's parser too
    "photos/": UNNAMED,  # nothing after the last separator: dropped by Django's parser too
}


def test_strange_names_are_stored_safely_each_with_its_own_row(
    client: Any, tenant_a: Tenant, photo_set: PhotoSet, link: UploadLink
):
    """Issue 13, finding 10: control characters, path separators, right-to-left overrides, names of only dots
    or nothing printable: every file sent gets its row under a safe name, and its stored path names none of it."""
    sent = list(STRANGE)
    body = multipart(*[(name, fixture_bytes("person_a_01.jpg")) for name in sent])
    response = post(client, link_url(tenant_a, link), body, JSON)
    assert response.status_code == 201, response.content
    entries = response.json()["files"]
    assert [entry["name"] for entry in entries] == [STRANGE[name] for name in sent]
    assert {entry["status"] for entry in entries} == {"pending"}
    with tenant_context(tenant_a.studio):
        photos = list(Photo.objects.filter(photo_set=photo_set))
    assert len(photos) == len(sent)
    for photo in photos:
        assert photo.original.name.startswith(f"intake/{tenant_a.studio.pk}/{photo_set.pk}/original/")
        assert photo.original.name.endswith(".jpg") and ".." not in photo.original.name


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("x" * 300, "x" * 254 + "…"),
        ("y" * 300 + ".JPEG", "y" * 249 + "….JPEG"),
        ("z" * 300 + "." + "e" * 40, "z" * 254 + "…"),  # an "extension" that long is no extension
        ("  spaced\u00a0out\u3000name .jpg  ", "spaced out name .jpg"),
        ("e\u0301te\u0301.jpg", "\u00e9t\u00e9.jpg"),  # composed (NFC), as macOS names are not
        ("", UNNAMED),
        (" . ", UNNAMED),
    ],
)
def test_safe_file_name(sent: str, kept: str):
    """Issue 13, finding 10: the shortened and normalised names, at the length the row keeps."""
    assert safe_file_name(sent) == kept


# --- beyond the bound: the request fails, clearly, and nothing stored is touched --------------------------------


def test_djangos_part_header_limit_is_raised_to_a_bound():
    """Issue 13, finding 10: the parser reads part headers up to 8 KiB (Django's default is 1 KiB)."""
    assert multipartparser.MAX_TOTAL_HEADER_SIZE == MAX_PART_HEADER_BYTES == 8 * 1024


def test_a_header_beyond_the_bound_on_the_self_upload_link(
    client: Any, tenant_a: Tenant, photo_set: PhotoSet, link: UploadLink, stored: Photo
):
    """Issue 13, finding 10: a file name too long to read answers the project's JSON error when JSON is asked,
    the page with the message otherwise; nothing is stored and the link's count stays."""
    body = multipart((FAR_TOO_LONG, fixture_bytes("person_a_01.jpg")), ("ok.jpg", fixture_bytes("person_a_02.jpg")))
    response = post(client, link_url(tenant_a, link), body, {"Accept": "application/json"})
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "name_too_long"
    assert "file name" in error["message"] and "rename" in error["message"]

    page = post(client, link_url(tenant_a, link), body)
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
    assert "rename the file" in page.content.decode() and "Bad Request (400)" not in page.content.decode()
    assert_untouched(tenant_a, photo_set, stored)
    with tenant_context(tenant_a.studio):
        assert UploadLink.objects.get(pk=link.pk).uploads == 0


def test_a_header_beyond_the_bound_on_the_api_and_the_set_page(
    client_a: Any, tenant_a: Tenant, photo_set: PhotoSet, stored: Photo
):
    """Issue 13, finding 10: the API answers its JSON error format with the same clear message; the set page
    answers JSON to its uploader and the page with the message to a plain form."""
    body = multipart((FAR_TOO_LONG, fixture_bytes("person_a_01.jpg")))
    response = post(client_a, api_url(tenant_a, photo_set), body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "name_too_long" and "rename the file" in error["message"]

    response = post(client_a, page_url(tenant_a, photo_set), body, JSON)
    assert response.status_code == 400 and response.json()["error"]["code"] == "name_too_long"
    page = post(client_a, page_url(tenant_a, photo_set), body)
    assert page.status_code == 400 and "rename the file" in page.content.decode()
    assert_untouched(tenant_a, photo_set, stored)


def test_too_many_files_too_much_form_data_and_a_broken_body_answer_json(
    client: Any, client_a: Any, tenant_a: Tenant, photo_set: PhotoSet, link: UploadLink, stored: Photo, settings: Any
):
    """Issue 13, finding 10: Django's other limits (DATA_UPLOAD_MAX_NUMBER_FILES, DATA_UPLOAD_MAX_MEMORY_SIZE)
    and an unreadable multipart body answer a clear JSON error on the link and the API, never HTML."""
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    photo = fixture_bytes("person_a_07_small.jpg")
    too_many = multipart(("1.jpg", photo), ("2.jpg", photo), ("3.jpg", photo))
    too_much = multipart(("1.jpg", photo), fields={"note": "x" * 20_000})
    broken = (  # a part that says it is base64 and isn't
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="files"; filename="b.jpg"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"abcde\r\n--{BOUNDARY}--\r\n"
    ).encode()
    cases = [(too_many, 400, "too_many_files", "at most 2 files"), (too_much, 413, "too_large", "form fields")]
    for url, browser, headers in (
        (link_url(tenant_a, link), client, JSON),
        (api_url(tenant_a, photo_set), client_a, {}),
        (page_url(tenant_a, photo_set), client_a, JSON),
    ):
        for body, status, code, words in cases:
            response = post(browser, url, body, headers)
            assert response.status_code == status, (url, response.content)
            error = response.json()["error"]
            assert error["code"] == code and words in error["message"], error
        response = post(browser, url, broken, headers)
        assert response.status_code == 400, (url, response.content)
        error = response.json()["error"]
        assert error["code"] == "unreadable_upload" and "base64" in error["message"], error
    assert_untouched(tenant_a, photo_set, stored)

    wrong_method = client.get(link_url(tenant_a, link), headers=JSON)
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "POST"
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
