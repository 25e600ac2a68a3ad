"""The size-limiting streaming upload handler, through real multipart requests and the whole middleware stack."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.http import HttpRequest, JsonResponse
from django.test import Client as HttpClient
from django.urls import path

from clients.uploads import SizeLimitedUploadHandler, limit_upload_size, refused_uploads, streaming_upload_view

SEEN: list[list] = []


@streaming_upload_view
def upload_view(request: HttpRequest) -> JsonResponse:
    SEEN.append(list(request.upload_handlers))
    files = {f.name: f.size for f in request.FILES.getlist("photos")}
    return JsonResponse({"files": files, "refused": refused_uploads(request), "note": request.POST.get("note")})


urlpatterns = [path("upload-test/", upload_view)]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.INTAKE_MAX_UPLOAD_BYTES = 300_000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100_000
    SEEN.clear()


def _file(name: str, size: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, b"\xff\xd8\xff" + b"a" * (size - 3), content_type="image/jpeg")


def test_files_over_the_limit_are_refused_and_the_others_kept(client):
    response = client.post(
        "/upload-test/",
        {
            "photos": [_file("small.jpg", 50_000), _file("huge.jpg", 900_000), _file("medium.jpg", 250_000)],
            "note": "hi",
        },
    )
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["files"] == {"small.jpg": 50_000, "medium.jpg": 250_000}
    assert body["note"] == "hi"
    assert body["refused"] == [
        ["huge.jpg", "too_large", "This file is larger than 293 KB: upload a smaller copy of the photo."]
    ]
    handlers = SEEN[0]
    assert isinstance(handlers[0], SizeLimitedUploadHandler)
    assert any(isinstance(h, MemoryFileUploadHandler | TemporaryFileUploadHandler) for h in handlers[1:])


def test_exactly_at_the_limit_is_accepted(client):
    body = json.loads(client.post("/upload-test/", {"photos": [_file("edge.jpg", 300_000)]}).content)
    assert body == {"files": {"edge.jpg": 300_000}, "refused": [], "note": None}


def test_message_names_the_limit_in_megabytes(client, settings):
    settings.INTAKE_MAX_UPLOAD_BYTES = 1024 * 1024
    body = json.loads(client.post("/upload-test/", {"photos": [_file("big.jpg", 1024 * 1024 + 1)]}).content)
    assert body["refused"][0][2].startswith("This file is larger than 1 MB:")
    settings.INTAKE_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
    from clients.services import too_large_message

    assert too_large_message() == "This file is larger than 25 MB: upload a smaller copy of the photo."


def test_csrf_is_still_enforced():
    strict = HttpClient(enforce_csrf_checks=True)
    assert strict.post("/upload-test/", {"photos": [_file("a.jpg", 10)]}).status_code == 403


def test_limit_upload_size_is_idempotent(rf):
    request = rf.post("/upload-test/")
    first = limit_upload_size(request)
    assert limit_upload_size(request) is first
    assert sum(isinstance(h, SizeLimitedUploadHandler) for h in request.upload_handlers) == 1
    assert refused_uploads(request) == []
