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
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from tenants.models import Membership, Role, Studio, User, client_language_choices
from tenants.signup import slug_problem


class EmailAuthenticationForm(AuthenticationForm):
    """Django's sign-in form with the email address as the username (the field stays `username` for axes)."""

    username = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That email and password don't match an account. Check them and try again."),
        "inactive": _("This account is disabled."),
    }


class StudioPasswordResetForm(PasswordResetForm):
    """Password reset: inside a studio only its members get an email (branded with the studio); on the
    platform, any active account. The message is rendered now and sent when the request's transaction
    commits. Whether an address has an account is never revealed."""

    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
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
        label=_("Email address"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.STAFF)

    def __init__(self, *args: Any, inviter_role: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inviter_role = inviter_role
        if inviter_role != Role.OWNER:
            self.fields["role"].choices = [(v, label) for v, label in Role.choices if v != Role.OWNER]
            self.fields["role"].error_messages["invalid_choice"] = _(
                "Choose Manager, Photographer or Staff. Only an owner can invite someone as an owner."
            )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        if role == Role.OWNER and self.inviter_role != Role.OWNER:
            raise forms.ValidationError(_("Only an owner can invite someone as an owner."))
        return role


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class AcceptSignupForm(forms.Form):
    """A new person accepting an invitation: a name and a password (Django's password validators)."""

    full_name = forms.CharField(label=_("Your name"), max_length=150, widget=forms.TextInput(attrs={"autofocus": True}))
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=lazy(password_validation.password_validators_help_text_html, str)(),
    )
    password2 = forms.CharField(
        label=_("Password again"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_full_name(self) -> str:
        name = self.cleaned_data["full_name"].strip()
        if not name:
            raise forms.ValidationError(_("Enter your name."))
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords don't match."))
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
        label=_("Password"),
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
                raise forms.ValidationError(_("That password is not right for this account."))
            self.user = user
        return cleaned


class SignupForm(forms.Form):
    """A studio's self-serve sign-up (tenants/signup.py). `website` is a honeypot: hidden from people, filled by
    bots; a form with it filled is answered as if it worked and nothing is stored."""

    studio_name = forms.CharField(
        label=_("Studio name"),
        max_length=120,
        error_messages={"required": _("Give your studio's name.")},
        widget=forms.TextInput(attrs={"autofocus": True}),
    )
    slug = forms.CharField(
        label=_("Your studio's address"),
        max_length=50,
        help_text=_("Lowercase letters, digits and hyphens: your clients will see it in links, e.g. /s/lumiere-lyon/."),
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false", "pattern": "[a-z0-9-]+"}),
    )
    full_name = forms.CharField(
        label=_("Your name"),
        max_length=150,
        error_messages={"required": _("Give your name.")},
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.EmailField(
        label=_("Your email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 10 characters, not a common password."),
    )
    website = forms.CharField(
        required=False,
        label=_("Leave this empty"),
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def clean_studio_name(self) -> str:
        name = " ".join(self.cleaned_data["studio_name"].split())
        if not name:
            raise forms.ValidationError(_("Give your studio's name."))
        return name

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].strip().lower()
        problem = slug_problem(slug, email=(self.data.get("email") or "").strip())
        if problem:
            raise forms.ValidationError(problem)
        return slug

    def clean_full_name(self) -> str:
        name = " ".join(self.cleaned_data["full_name"].split())
        if not name:
            raise forms.ValidationError(_("Give your name."))
        return name

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            probe = User(email=cleaned.get("email") or "", full_name=cleaned.get("full_name") or "")
            try:
                password_validation.validate_password(password, probe)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned

    @property
    def is_bot(self) -> bool:
        return bool((self.data.get("website") or "").strip())


class BrandingForm(forms.Form):
    """The owner's branding page (tenants/branding.py decides)."""

    primary_color = forms.RegexField(
        label=_("Accent colour"),
        regex=r"^#[0-9a-fA-F]{6}$",
        error_messages={"invalid": _("Use a colour like #1f2937.")},
        widget=forms.TextInput(attrs={"type": "color"}),
        help_text=_("Buttons and headers of your studio's pages and your clients' galleries."),
    )
    watermark_text = forms.CharField(
        label=_("Watermark text"),
        max_length=60,
        required=False,
        help_text=_("Tiled over the previews your clients see before they buy (empty: your studio's name)."),
    )
    logo = forms.FileField(
        label=_("Logo"),
        required=False,
        help_text=_("JPEG, PNG or WebP, up to 2 MB; shown at most 512 px wide."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    remove_logo = forms.BooleanField(label=_("Remove the logo"), required=False)
    gallery_cover = forms.FileField(
        label=_("Gallery cover"),
        required=False,
        help_text=_(
            "A wide photo shown at the top of your clients’ galleries (a gallery can use one of its portraits "
            "instead). JPEG, PNG or WebP, at least 600 px, up to 15 MB."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    remove_gallery_cover = forms.BooleanField(label=_("Remove the gallery cover"), required=False)
    client_language = forms.ChoiceField(
        label=_("Your clients' language"),
        choices=client_language_choices,
        required=False,  # left out: unchanged
        help_text=_("Galleries, upload pages, consent and emails your clients see; they can switch on the page."),
    )
