"""The studio API: profile, members, invitations, API keys; JSON errors."""

from __future__ import annotations

import pytest
from django.core import mail

from tenants.api_keys import create_api_key
from tenants.context import tenant_context
from tenants.models import ApiKey, Invitation, Membership, Role, Studio
from tests.conftest import add_member

pytestmark = pytest.mark.django_db


def api(tenant, path=""):
    return f"{tenant.prefix}/api/{path}"


def error(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]


# --- Studio profile -------------------------------------------------------------------------------------------


def test_members_read_the_studio_profile(client, two_tenants):
    a, _ = two_tenants
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    client.force_login(staff)
    response = client.get(api(a, "studio/"))
    assert response.status_code == 200
    assert response.json() == {
        "name": "Studio A",
        "slug": "studio-a",
        "primary_color": "#aa3366",
        "contact_email": "",
        "custom_domain": None,
        "has_logo": False,
        "has_gallery_cover": False,
        "watermark_text": "",
        "client_language": "en",
    }


def test_managers_patch_the_profile(client_a, tenant_a):
    response = client_a.patch(
        api(tenant_a, "studio/"),
        {"name": " New name ", "primary_color": "#112233", "slug": "stolen", "plan": "enterprise"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    studio = Studio.objects.get(pk=tenant_a.studio.pk)
    assert (studio.name, studio.primary_color, studio.slug) == ("New name", "#112233", "studio-a")


def test_profile_validation_errors_name_the_field(client_a, tenant_a):
    response = client_a.patch(api(tenant_a, "studio/"), {"primary_color": "red"}, content_type="application/json")
    assert response.status_code == 400
    err = error(response)
    assert err["code"] == "invalid"
    assert err["message"].startswith("primary_color: ")
    assert "primary_color" in err["fields"]
    response = client_a.patch(api(tenant_a, "studio/"), {"name": "  "}, content_type="application/json")
    assert response.status_code == 400
    assert error(response)["message"].startswith("name: ")


def test_staff_cannot_patch_the_profile_and_put_is_not_allowed(client, client_a, two_tenants):
    a, _ = two_tenants
    assert client_a.put(api(a, "studio/"), {}, content_type="application/json").status_code == 405
    staff = add_member(a, "staff@studio-a.example", Role.STAFF)
    client.force_login(staff)
    response = client.patch(api(a, "studio/"), {"name": "X"}, content_type="application/json")
    assert response.status_code == 403
    assert error(response)["code"] == "permission_denied"


# --- Members --------------------------------------------------------------------------------------------------


def test_member_list_is_the_studios_own(client_a, two_tenants, django_assert_max_num_queries):
    a, b = two_tenants
    for i in range(3):
        add_member(a, f"m{i}@studio-a.example", Role.STAFF)
    with django_assert_max_num_queries(10):
        response = client_a.get(api(a, "members/"))
    assert response.status_code == 200
    emails = [m["user"]["email"] for m in response.json()["results"]]
    assert "owner@studio-a.example" in emails and len(emails) == 4
    assert "owner@studio-b.example" not in emails


def test_owner_changes_a_role_and_removes_a_member(client_a, tenant_a):
    user = add_member(tenant_a, "p@studio-a.example", Role.STAFF)
    with tenant_context(tenant_a.studio):
        membership = Membership.objects.get(user=user)
    url = api(tenant_a, f"members/{membership.pk}/")
    response = client_a.patch(url, {"role": "photographer"}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "photographer"
    assert client_a.get(url).json()["user"]["email"] == "p@studio-a.example"
    response = client_a.patch(url, {"role": "emperor"}, content_type="application/json")
    assert response.status_code == 400
    assert error(response)["message"].startswith("role: ")
    assert client_a.delete(url).status_code == 204
    with tenant_context(tenant_a.studio):
        assert not Membership.objects.filter(pk=membership.pk).exists()


def test_business_rules_answer_with_the_services_message(client, client_a, tenant_a):
    url = api(tenant_a, f"members/{tenant_a.membership.pk}/")
    response = client_a.patch(url, {"role": "staff"}, content_type="application/json")
    assert response.status_code == 400
    assert error(response) == {
        "code": "last_owner",
        "message": "owner@studio-a.example is the studio's last owner: make someone else an owner first.",
    }
    assert client_a.delete(url).status_code == 400
    manager = add_member(tenant_a, "manager@studio-a.example", Role.MANAGER)
    client.force_login(manager)
    response = client.patch(url, {"role": "staff"}, content_type="application/json")
    assert response.status_code == 403
    assert error(response)["code"] == "owner_only"


def test_staff_reads_members_but_cannot_change_them(client, tenant_a):
    staff = add_member(tenant_a, "s@studio-a.example", Role.STAFF)
    client.force_login(staff)
    url = api(tenant_a, f"members/{tenant_a.membership.pk}/")
    assert client.get(url).status_code == 200
    assert client.patch(url, {"role": "staff"}, content_type="application/json").status_code == 403
    assert client.delete(url).status_code == 403


# --- Invitations ----------------------------------------------------------------------------------------------


def test_manager_invites_lists_and_revokes(client_a, tenant_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(
            api(tenant_a, "invitations/"),
            {"email": "New@Example.com", "role": "photographer"},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new@example.com" and body["role"] == "photographer" and body["status"] == "pending"
    assert "token" not in body
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.com"]
    listed = client_a.get(api(tenant_a, "invitations/")).json()["results"]
    assert [i["email"] for i in listed] == ["new@example.com"]
    url = api(tenant_a, f"invitations/{body['id']}/")
    assert client_a.delete(url).status_code == 204
    assert client_a.get(url).json()["status"] == "revoked"
    response = client_a.delete(url)
    assert response.status_code == 400
    assert error(response)["code"] == "revoked"


def test_invitation_errors(client_a, tenant_a):
    url = api(tenant_a, "invitations/")
    response = client_a.post(url, {"email": "nope"}, content_type="application/json")
    assert response.status_code == 400 and error(response)["message"].startswith("email: ")
    response = client_a.post(url, {"email": "owner@studio-a.example"}, content_type="application/json")
    assert response.status_code == 400 and error(response)["code"] == "already_member"
    client_a.post(url, {"email": "x@example.com"}, content_type="application/json")
    response = client_a.post(url, {"email": "x@example.com"}, content_type="application/json")
    assert response.status_code == 400 and error(response)["code"] == "already_invited"


def test_staff_cannot_see_invitations(client, tenant_a):
    staff = add_member(tenant_a, "s@studio-a.example", Role.STAFF)
    client.force_login(staff)
    assert client.get(api(tenant_a, "invitations/")).status_code == 403
    with tenant_context(tenant_a.studio):
        from tests.tenants.factories import make_invitation

        invitation = make_invitation(tenant_a)
    assert client.get(api(tenant_a, f"invitations/{invitation.pk}/")).status_code == 403
    assert client.get(api(tenant_a, f"invitations/{invitation.pk + 1000}/")).status_code == 404


# --- API keys -------------------------------------------------------------------------------------------------


def test_api_keys_create_list_revoke(client, client_a, tenant_a):
    response = client_a.post(api(tenant_a, "api-keys/"), {"name": "CRM"}, content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    raw = created["key"]
    assert raw.startswith(f"sk_{created['prefix']}_") and created["is_active"] is True
    listed = client_a.get(api(tenant_a, "api-keys/")).json()["results"]
    assert [k["name"] for k in listed] == ["CRM"] and "key" not in listed[0]
    # The key works, then is revoked.
    anonymous = client.__class__()
    assert anonymous.get(api(tenant_a, "studio/"), headers={"Authorization": f"Api-Key {raw}"}).status_code == 200
    assert client_a.delete(api(tenant_a, f"api-keys/{created['id']}/")).status_code == 204
    assert anonymous.get(api(tenant_a, "studio/"), headers={"Authorization": f"Api-Key {raw}"}).status_code == 401
    assert client_a.get(api(tenant_a, f"api-keys/{created['id']}/")).json()["is_active"] is False


def test_api_key_name_errors(client_a, tenant_a):
    url = api(tenant_a, "api-keys/")
    response = client_a.post(url, {}, content_type="application/json")
    assert response.status_code == 400 and error(response)["message"] == "name: This field is required."
    client_a.post(url, {"name": "CRM"}, content_type="application/json")
    response = client_a.post(url, {"name": "CRM"}, content_type="application/json")
    assert response.status_code == 400
    assert "already exists" in error(response)["message"]


def test_photographers_cannot_manage_keys(client, tenant_a):
    user = add_member(tenant_a, "p@studio-a.example", Role.PHOTOGRAPHER)
    client.force_login(user)
    response = client.post(api(tenant_a, "api-keys/"), {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert error(response)["message"] == "Only the studio's owners and managers can do this."
    with tenant_context(tenant_a.studio):
        api_key, _ = create_api_key(name="k", created_by=tenant_a.owner)
    assert client.delete(api(tenant_a, f"api-keys/{api_key.pk}/")).status_code == 403
    with tenant_context(tenant_a.studio):
        assert ApiKey.objects.get(pk=api_key.pk).is_active


# --- JSON errors ----------------------------------------------------------------------------------------------


def test_errors_are_json(client_a, two_tenants):
    a, b = two_tenants
    response = client_a.get(api(a, "members/999999/"))
    assert response.status_code == 404 and error(response) == {"code": "not_found", "message": "Not found."}
    response = client_a.generic("PATCH", api(a, "studio/"), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error(response)["code"] == "parse_error" and "JSON parse error" in error(response)["message"]
    response = client_a.post(api(a, "api-keys/"), "[1, 2]", content_type="application/json")
    assert response.status_code == 400 and "Expected a dictionary" in error(response)["message"]
    response = client_a.post(api(a, "studio/"), {}, content_type="application/json")
    assert response.status_code == 405 and error(response)["code"] == "method_not_allowed"
    # A signed-in user who isn't a member of the studio: as if the studio's API didn't exist.
    response = client_a.get(api(b, "members/"))
    assert response.status_code == 404 and error(response)["code"] == "not_found"
    client_a.logout()
    response = client_a.get(api(a, "members/"))
    assert response.status_code == 401 and error(response)["code"] == "not_authenticated"


def test_unknown_api_path_is_json_404(client_a, tenant_a):
    response = client_a.get(api(tenant_a, "no-such-endpoint/"))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json"), (
        'studio_saas/urls_studio.py needs `handler404 = "studio_saas.api.json_not_found"`'
    )
    assert error(response)["code"] == "not_found"


def test_invitation_object_of_another_studio_is_404_json(client_a, two_tenants):
    a, b = two_tenants
    with tenant_context(b.studio):
        from tests.tenants.factories import make_invitation

        invitation = make_invitation(b)
    for method in ("get", "delete"):
        response = getattr(client_a, method)(api(a, f"invitations/{invitation.pk}/"))
        assert response.status_code == 404 and error(response)["code"] == "not_found"
    with tenant_context(b.studio):
        assert Invitation.objects.get(pk=invitation.pk).revoked_at is None


# --- Branding (the branding page's form, by API) ----------------------------------------------------------------


def test_the_owner_brands_the_studio_through_the_api_and_nobody_else_can(client, two_tenants, settings, tmp_path):  # noqa: ANN001, ANN201
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from tests.tenants.factories import make_api_key

    settings.MEDIA_ROOT = tmp_path
    a, _ = two_tenants

    def image(size: tuple[int, int]) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", size, (10, 80, 90)).save(out, format="JPEG")
        return out.getvalue()

    url = f"{a.prefix}/api/studio/branding/"
    client.force_login(a.owner)
    answer = client.post(
        url,
        {
            "primary_color": "#0f766e",
            "watermark_text": "Lumière",
            "client_language": "fr",
            "logo": SimpleUploadedFile("logo.jpg", image((400, 400)), "image/jpeg"),
            "gallery_cover": SimpleUploadedFile("cover.jpg", image((1800, 600)), "image/jpeg"),
        },
    )
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert (data["primary_color"], data["watermark_text"], data["client_language"]) == ("#0f766e", "Lumière", "fr")
    assert data["has_logo"] and data["has_gallery_cover"]
    # A cover that can't be used: 400 with the reason, nothing changed (the colour neither).
    bad = client.post(url, {"primary_color": "#111111", "gallery_cover": SimpleUploadedFile("c.jpg", b"nope")})
    assert bad.status_code == 400 and "This cover can’t be used" in bad.json()["error"]["message"]
    studio = Studio.objects.get(pk=a.studio.pk)
    assert studio.primary_color == "#0f766e" and studio.gallery_cover
    assert client.post(url, {"remove_gallery_cover": "true"}).json()["has_gallery_cover"] is False

    # A manager, and an API key: the branding is the owner's (as on the page).
    client.force_login(add_member(a, "manager@studio-a.example", Role.MANAGER))
    assert client.post(url, {"watermark_text": "X"}).status_code == 403
    client.logout()
    with tenant_context(a.studio):
        key = make_api_key(a)
    keyed = client.post(url, {"watermark_text": "X"}, headers={"Authorization": f"Api-Key {key.raw_key}"})
    assert keyed.status_code == 403
    assert Studio.objects.get(pk=a.studio.pk).watermark_text == "Lumière"
