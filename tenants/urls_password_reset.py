"""Password reset, the same steps on the platform and inside a studio (mounted at accounts/password-reset/)."""

from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.StudioPasswordResetView.as_view(), name="password_reset"),
    path("done/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("complete/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
