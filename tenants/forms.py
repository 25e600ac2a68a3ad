"""Forms for signing in, password resets, invitations and members. They check input; services decide."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.http import HttpRequest
from django.template import loader

from tenants.models import Membership, Role, Studio, User


class EmailAuthenticationForm(AuthenticationForm):
    """Django's sign-in form with the email address as the username (the field stays `username` for axes)."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don't match an account. Check them and try again.",
        "inactive": "This account is disabled.",
    }


class StudioPasswordResetForm(PasswordResetForm):
    """Password reset: inside a studio only its members get an email (branded with the studio); on the
    platform, any active account. The message is rendered now and sent when the request's transaction
    commits. Whether an address has an account is never revealed."""

    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    def __init__(self, *args: Any, studio: Studio | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.studio = studio

    def get_users(self, email: str) -> Iterable[User]:
        users = User.objects.filter(email__iexact=email.strip(), is_active=True)
        if self.studio is not None:
            member_ids = Membership.objects.values("user_id")  # the current studio's (tenant-scoped manager)
            users = users.filter(pk__in=member_ids)
        return (u for u in users if u.has_usable_password())

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        message = EmailMultiAlternatives(subject, body, from_email or settings.DEFAULT_FROM_EMAIL, [to_email])
        transaction.on_commit(message.send)


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="Email address", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.STAFF)

    def __init__(self, *args: Any, inviter_role: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inviter_role = inviter_role
        if inviter_role != Role.OWNER:
            self.fields["role"].choices = [(v, label) for v, label in Role.choices if v != Role.OWNER]
            self.fields["role"].error_messages["invalid_choice"] = (
                "Choose Manager, Photographer or Staff. Only an owner can invite someone as an owner."
            )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        if role == Role.OWNER and self.inviter_role != Role.OWNER:
            raise forms.ValidationError("Only an owner can invite someone as an owner.")
        return role


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class AcceptSignupForm(forms.Form):
    """A new person accepting an invitation: a name and a password (Django's password validators)."""

    full_name = forms.CharField(label="Your name", max_length=150, widget=forms.TextInput(attrs={"autofocus": True}))
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_full_name(self) -> str:
        name = self.cleaned_data["full_name"].strip()
        if not name:
            raise forms.ValidationError("Enter your name.")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords don't match.")
        elif p1:
            candidate = User(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(p1, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class AcceptSigninForm(forms.Form):
    """An existing account accepting an invitation: the password of the invited address."""

    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )

    def __init__(self, *args: Any, request: HttpRequest, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.email = email
        self.user: User | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            user = authenticate(self.request, username=self.email, password=password)
            if user is None or not user.is_active:
                raise forms.ValidationError("That password is not right for this account.")
            self.user = user
        return cleaned
