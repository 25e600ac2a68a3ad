"""Platform pages (no studio): the front door with sign-in and the studio chooser, and account pages."""

from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.platform_home, name="home"),
    path("accounts/login/", views.platform_home, name="login"),
    path("accounts/logout/", views.StudioLogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", views.StudioPasswordResetView.as_view(), name="password_reset"),
    path("accounts/password-reset/done/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password-reset/complete/",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
