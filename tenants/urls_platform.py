"""Platform pages (no studio): the front door with sign-in and the studio chooser, and account pages."""

from django.urls import include, path

from tenants import views

urlpatterns = [
    path("", views.platform_home, name="home"),
    path("accounts/login/", views.platform_home, name="login"),
    path("accounts/logout/", views.StudioLogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", include("tenants.urls_password_reset")),
]
