"""A client's answer to the studio's messages, inside a studio at /m/ (no account; see clients.views_messages)."""

from django.urls import path

from clients import views_messages

urlpatterns = [
    path("stop/<str:token>/", views_messages.stop_reminders, name="stop_reminders"),
]
