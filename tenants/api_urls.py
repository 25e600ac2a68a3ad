"""The studio API's own endpoints (included under /api/ inside a studio). Object ids are `<model>_id`."""

from django.urls import path

from tenants import api

urlpatterns = [
    path("studio/", api.StudioProfileView.as_view(), name="api-studio"),
    path("studio/branding/", api.StudioBrandingView.as_view(), name="api-studio-branding"),
    path("members/", api.MemberListView.as_view(), name="api-members"),
    path("members/<int:membership_id>/", api.MemberDetailView.as_view(), name="api-member"),
    path("invitations/", api.InvitationListCreateView.as_view(), name="api-invitations"),
    path("invitations/<int:invitation_id>/", api.InvitationDetailView.as_view(), name="api-invitation"),
    path("api-keys/", api.ApiKeyListCreateView.as_view(), name="api-keys"),
    path("api-keys/<int:apikey_id>/", api.ApiKeyDetailView.as_view(), name="api-key"),
]
