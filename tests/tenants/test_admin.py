"""The Django admin: the studio back office inside each studio, the platform admin at /admin/."""

from __future__ import annotations

import pytest
from django.core import mail

from tenants.api_keys import create_api_key
from tenants.context import tenant_context
from tenants.models import ApiKey, Invitation, Membership, Role, User
from tests.conftest import TEST_PASSWORD, add_member
from tests.factories import build_all

pytestmark = pytest.mark.django_db


def admin_url(tenant, path=""):
    return f"{tenant.prefix}/admin/{path}"


def listed(response):
    return list(response.context["cl"].result_list)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@platform.example", TEST_PASSWORD)


# --- Inside a studio ------------------------------------------------------------------------------------------


def test_owner_without_is_staff_gets_the_studio_admin(client_a, two_tenants):
    a, _ = two_tenants
    assert not a.owner.is_staff
    response = client_a.get(admin_url(a))
    assert response.status_code == 200
    models = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert models >= {"Membership", "Invitation", "ApiKey"}
    assert not models & {"Studio", "User", "Group", "Schedule", "AccessAttempt"}
    html = response.content.decode()
    assert "Studio A back office" in html
    assert "Recent actions" not in html  # Django's admin log isn't per studio


def test_owner_sees_only_their_studios_rows(client_a, two_tenants):
    a, b = two_tenants
    rows_a, rows_b = build_all(a), build_all(b)
    for model in (Membership, Invitation, ApiKey):
        response = client_a.get(admin_url(a, f"tenants/{model._meta.model_name}/"))
        assert response.status_code == 200
        objects = listed(response)
        assert rows_a[model] in objects
        assert all(obj.studio_id == a.studio.pk for obj in objects)
        assert rows_b[model] not in objects


def test_another_studios_object_is_404_not_a_redirect(client_a, two_tenants):
    a, b = two_tenants
    rows_b = build_all(b)
    for model, obj in rows_b.items():
        base = admin_url(a, f"{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/")
        for suffix in ("", "change/", "delete/", "history/"):
            assert client_a.get(base + suffix).status_code == 404, base + suffix
    assert client_a.get(admin_url(a, "tenants/membership/999999/change/")).status_code == 404
    assert client_a.get(admin_url(a, "tenants/membership/not-a-number/change/")).status_code == 404


def test_platform_models_do_not_exist_inside_a_studio(client_a, tenant_a, superuser, client):
    for path in (
        "tenants/studio/",
        f"tenants/studio/{tenant_a.studio.pk}/change/",
        "tenants/user/",
        f"tenants/user/{tenant_a.owner.pk}/password/",
        "auth/group/",
        "django_q/schedule/",
        "auth/",
    ):
        assert client_a.get(admin_url(tenant_a, path)).status_code == 404, path
    client.force_login(superuser)  # even for a platform superuser: those live at /admin/
    assert client.get(admin_url(tenant_a, "tenants/studio/")).status_code == 404


def test_studio_field_is_hidden_and_set(client_a, tenant_a, django_capture_on_commit_callbacks):
    response = client_a.get(admin_url(tenant_a, "tenants/invitation/add/"))
    assert response.status_code == 200
    assert "studio" not in response.context["adminform"].form.fields
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(
            admin_url(tenant_a, "tenants/invitation/add/"), {"email": "new@example.com", "role": "staff"}
        )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    with tenant_context(tenant_a.studio):
        invitation = Invitation.objects.get(email="new@example.com")
    assert invitation.studio_id == tenant_a.studio.pk and invitation.invited_by == tenant_a.owner
    assert len(mail.outbox) == 1  # the same service as the members page: the email goes out


def test_admin_forms_obey_the_services_rules(client_a, tenant_a):
    url = admin_url(tenant_a, f"tenants/membership/{tenant_a.membership.pk}/change/")
    response = client_a.post(url, {"role": "staff"})
    assert response.status_code == 200  # the form again, with the reason
    assert "last owner" in response.content.decode()
    with tenant_context(tenant_a.studio):
        assert Membership.objects.get(pk=tenant_a.membership.pk).role == Role.OWNER
    response = client_a.post(
        admin_url(tenant_a, "tenants/invitation/add/"), {"email": "owner@studio-a.example", "role": "staff"}
    )
    assert response.status_code == 200
    assert "already a member" in response.content.decode()


def test_owner_changes_a_role_in_the_admin(client_a, tenant_a):
    user = add_member(tenant_a, "p@studio-a.example", Role.STAFF)
    with tenant_context(tenant_a.studio):
        membership = Membership.objects.get(user=user)
    response = client_a.post(
        admin_url(tenant_a, f"tenants/membership/{membership.pk}/change/"), {"role": "photographer"}
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        assert Membership.objects.get(pk=membership.pk).role == Role.PHOTOGRAPHER


def test_user_choices_are_limited_to_the_studios_members(rf, two_tenants):
    """FK choices inside a studio: the studio's own rows, or its members for a user field."""
    from django.contrib import admin

    a, b = two_tenants
    request = rf.get("/")
    request.studio = a.studio
    request.user = a.owner
    model_admin = admin.site._registry[Invitation]
    field = Invitation._meta.get_field("invited_by")
    with tenant_context(a.studio):
        formfield = model_admin.formfield_for_foreignkey(field, request)
        assert list(formfield.queryset) == [a.owner]


def test_staff_can_view_but_not_change(client, tenant_a):
    staff = add_member(tenant_a, "staff@studio-a.example", Role.STAFF)
    client.force_login(staff)
    response = client.get(admin_url(tenant_a))
    assert response.status_code == 200
    models = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    # invitations and API keys are for owners and managers; doubles and portraits are read-only for everyone
    assert models == {"Membership", "Job", "DigitalDouble", "Portrait", "RenderRun", "Template", "StyleLora", "Gallery"}
    url = admin_url(tenant_a, f"tenants/membership/{tenant_a.membership.pk}/change/")
    assert client.get(url).status_code == 200
    assert client.post(url, {"role": "staff"}).status_code == 403
    assert (
        client.post(
            admin_url(tenant_a, f"tenants/membership/{tenant_a.membership.pk}/delete/"), {"post": "yes"}
        ).status_code
        == 403
    )
    assert client.get(admin_url(tenant_a, "tenants/apikey/")).status_code == 403
    with tenant_context(tenant_a.studio):
        assert Membership.objects.get(pk=tenant_a.membership.pk).role == Role.OWNER


def test_api_keys_are_read_only_in_the_admin(client_a, tenant_a):
    with tenant_context(tenant_a.studio):
        api_key, raw = create_api_key(name="k", created_by=tenant_a.owner)
    assert client_a.get(admin_url(tenant_a, "tenants/apikey/add/")).status_code == 403
    response = client_a.get(admin_url(tenant_a, f"tenants/apikey/{api_key.pk}/change/"))
    assert response.status_code == 200
    html = response.content.decode()
    assert api_key.hashed_key in html and raw not in html
    assert not response.context["adminform"].form.fields  # every field is read-only
    response = client_a.post(
        admin_url(tenant_a, "tenants/apikey/"), {"action": "revoke", "_selected_action": [api_key.pk]}
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        assert not ApiKey.objects.get(pk=api_key.pk).is_active


def test_anonymous_and_non_members(client, two_tenants):
    a, b = two_tenants
    response = client.get(admin_url(a))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{a.prefix}/accounts/login/?next=")
    response = client.get(admin_url(a, "login/"))
    assert response.status_code == 302 and response["Location"].startswith(f"{a.prefix}/accounts/login/")
    client.force_login(b.owner)
    assert client.get(admin_url(a)).status_code == 404
    assert client.get(admin_url(a, "tenants/membership/")).status_code == 404


def test_a_superuser_inside_a_studio_sees_only_that_studio(client, two_tenants, superuser):
    a, b = two_tenants
    client.force_login(superuser)
    response = client.get(admin_url(a, "tenants/membership/"))
    assert response.status_code == 200
    assert {m.studio_id for m in listed(response)} == {a.studio.pk}


# --- The platform admin ---------------------------------------------------------------------------------------


def test_superuser_at_admin_sees_every_studio(client, two_tenants, superuser):
    a, b = two_tenants
    build_all(a), build_all(b)
    client.force_login(superuser)
    response = client.get("/admin/")
    assert response.status_code == 200
    models = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {"Studio", "User", "Membership", "Invitation", "ApiKey"} <= models
    for model in (Membership, Invitation, ApiKey):
        response = client.get(f"/admin/tenants/{model._meta.model_name}/")
        assert response.status_code == 200
        assert {obj.studio_id for obj in listed(response)} == {a.studio.pk, b.studio.pk}
        assert "studio" in response.context["cl"].list_display
    response = client.get(f"/admin/tenants/membership/{b.membership.pk}/change/")
    assert response.status_code == 200
    assert "Studio B" in response.content.decode()
    assert {s.slug for s in listed(client.get("/admin/tenants/studio/"))} == {"studio-a", "studio-b"}


def test_platform_admin_writes_in_the_platform_context(client, two_tenants, superuser):
    a, b = two_tenants
    user = add_member(b, "p@studio-b.example", Role.STAFF)
    with tenant_context(b.studio):
        membership = Membership.objects.get(user=user)
    client.force_login(superuser)
    response = client.post(
        f"/admin/tenants/membership/{membership.pk}/change/", {"studio": b.studio.pk, "role": "manager"}
    )
    assert response.status_code == 302
    with tenant_context(b.studio):
        assert Membership.objects.get(pk=membership.pk).role == Role.MANAGER


def test_platform_admin_is_for_superusers_only(client, two_tenants):
    a, _ = two_tenants
    staff_user = User.objects.create_user("ops@platform.example", TEST_PASSWORD, is_staff=True)
    client.force_login(a.owner)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(staff_user)
    assert client.get("/admin/tenants/membership/").status_code == 302
    client.logout()
    response = client.post("/admin/login/", {"username": "ops@platform.example", "password": TEST_PASSWORD})
    assert response.status_code == 200
    assert "Only platform administrators" in response.content.decode()


def test_removing_members_goes_through_the_service(client_a, tenant_a):
    user = add_member(tenant_a, "s@studio-a.example", Role.STAFF)
    with tenant_context(tenant_a.studio):
        membership = Membership.objects.get(user=user)
    response = client_a.post(admin_url(tenant_a, f"tenants/membership/{membership.pk}/delete/"), {"post": "yes"})
    assert response.status_code == 302
    response = client_a.post(
        admin_url(tenant_a, f"tenants/membership/{tenant_a.membership.pk}/delete/"), {"post": "yes"}, follow=True
    )
    assert "last owner and can&#x27;t be removed" in response.content.decode()
    with tenant_context(tenant_a.studio):
        assert list(Membership.objects.values_list("pk", flat=True)) == [tenant_a.membership.pk]
    changelist = client_a.get(admin_url(tenant_a, "tenants/membership/"))
    assert changelist.context["action_form"] is None  # no bulk delete: removals go one by one


def test_revoking_invitations_from_the_admin(client_a, tenant_a):
    with tenant_context(tenant_a.studio):
        from tests.tenants.factories import make_invitation

        invitation = make_invitation(tenant_a)
    response = client_a.post(
        admin_url(tenant_a, "tenants/invitation/"), {"action": "revoke", "_selected_action": [invitation.pk]}
    )
    assert response.status_code == 302
    with tenant_context(tenant_a.studio):
        assert Invitation.objects.get(pk=invitation.pk).revoked_at is not None


def test_platform_user_admin_works_with_email_logins(client, two_tenants, superuser):
    a, _ = two_tenants
    client.force_login(superuser)
    assert client.get("/admin/tenants/user/add/").status_code == 200
    response = client.post(
        "/admin/tenants/user/add/",
        {
            "email": "New.Person@Example.com",
            "usable_password": "true",
            "password1": "a-long-enough-pass-42",
            "password2": "a-long-enough-pass-42",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password("a-long-enough-pass-42") and not user.is_staff
    assert client.get(f"/admin/tenants/user/{a.owner.pk}/change/").status_code == 200
    assert client.get(f"/admin/tenants/user/{a.owner.pk}/password/").status_code == 200
    assert client.get("/admin/tenants/user/999999/change/").status_code == 404


def test_a_portraits_admin_page_shows_the_signed_image_not_a_storage_path(client_a, tenant_a, settings, tmp_path):
    """The Portrait admin's image row is the signed, expiring image (its method was named like the model's
    `preview` file field, which won: the page linked the watermarked preview's storage path)."""
    from tests.galleries.factories import portrait_with_files, studio_double, use_private_storage

    use_private_storage(settings, tmp_path / "media")
    with tenant_context(tenant_a.studio):
        portrait = portrait_with_files(tenant_a, double=studio_double(tenant_a))
        preview_name = portrait.preview.name
    response = client_a.get(admin_url(tenant_a, f"generation/portrait/{portrait.pk}/change/"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="admin-preview"' in html and "/media/" in html
    assert preview_name not in html
