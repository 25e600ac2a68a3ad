"""Account and studio pages inside a studio (after tenant resolution). Object ids are `<model>_id`."""

from django.urls import include, path

from tenants import views
from tenants.access import studio_member_required
from tenants.i18n import set_language

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("branding/", views.branding, name="branding"),
    path("branding/logo/", views.studio_logo, name="studio_logo"),
    path("branding/cover/", views.studio_gallery_cover, name="studio_gallery_cover"),
    path("onboarding/hide/", views.hide_onboarding, name="hide_onboarding"),
    # Accounts, branded with the studio.
    path("accounts/login/", views.StudioLoginView.as_view(), name="login"),
    path("accounts/logout/", views.StudioLogoutView.as_view(), name="logout"),
    path("accounts/language/", set_language, name="set_language"),
    path("accounts/password-reset/", include("tenants.urls_password_reset")),
    path("accounts/password/", studio_member_required(views.PasswordChangeView.as_view()), name="password_change"),
    path(
        "accounts/password/done/",
        studio_member_required(views.PasswordChangeDoneView.as_view()),
        name="password_change_done",
    ),
    # Members and invitations.
    path("members/", views.members, name="members"),
    path("members/invite/", views.invite_member, name="invite_member"),
    path(
        "members/invitations/<int:invitation_id>/revoke/",
        views.revoke_invitation,
        name="revoke_invitation",
    ),
    path("members/<int:membership_id>/role/", views.change_member_role, name="change_member_role"),
    path("members/<int:membership_id>/remove/", views.remove_member, name="remove_member"),
    path("invite/<str:token>/", views.accept_invitation, name="accept_invitation"),
]
