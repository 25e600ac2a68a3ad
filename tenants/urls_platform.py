"""Platform pages (no studio): the front door with sign-in and the studio chooser, account pages, and a
studio's self-serve sign-up."""

from django.urls import include, path

from tenants import views, views_signup
from tenants.i18n import set_language

urlpatterns = [
    path("", views.platform_home, name="home"),
    path("accounts/login/", views.platform_home, name="login"),
    path("accounts/logout/", views.StudioLogoutView.as_view(), name="logout"),
    path("accounts/language/", set_language, name="set_language"),
    path("accounts/password-reset/", include("tenants.urls_password_reset")),
    path("signup/", views_signup.signup_page, name="signup"),
    path("signup/confirm/<str:token>/", views_signup.signup_confirm, name="signup_confirm"),
]
