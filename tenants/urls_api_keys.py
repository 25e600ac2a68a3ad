"""The API keys page inside a studio. Object ids are `<model>_id`."""

from django.urls import path

from tenants import views_api_keys

urlpatterns = [
    path("api-keys/", views_api_keys.api_keys_page, name="api_keys"),
    path("api-keys/<int:apikey_id>/revoke/", views_api_keys.revoke_api_key, name="revoke_api_key"),
]
