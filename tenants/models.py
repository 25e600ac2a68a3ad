"""The tenant (Studio), users and memberships, and the base for everything a studio owns."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.context import (
    CrossTenantWrite,
    in_platform_context,
    require_studio_id,
)

# --- Users ----------------------------------------------------------------------------------------------------


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username or "")


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Platform superusers have `is_superuser`; studio staff have memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    # Django's admin flag; studio admin access comes from memberships, not from this.
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # The language of the studio's pages for this person (a code of settings.LANGUAGES); empty: the browser's.
    language = models.CharField(max_length=10, blank=True, default="")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name or self.email).split(" ")[0]


# --- The tenant -----------------------------------------------------------------------------------------------

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    _("Use 1-50 lowercase letters, digits and hyphens; no hyphen at either end."),
)
RESERVED_SLUGS = frozenset({"www", "api", "admin", "static", "media", "app", "s", "healthz", "metrics"})


def client_language_choices() -> list[tuple[str, str]]:
    """The languages a studio's clients can read their pages in (settings.LANGUAGES), read when asked."""
    return [(code, name) for code, name in settings.LANGUAGES]


class Studio(models.Model):
    """A photo studio: the tenant. Everything a studio owns points here."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    custom_domain = models.CharField(
        max_length=253, unique=True, null=True, blank=True, help_text="e.g. portraits.example.com"
    )
    logo = models.ImageField(upload_to="studio-logos/", blank=True)
    # The picture at the top of the studio's client galleries (a gallery may pick one of its portraits instead):
    # a re-encoded JPEG (tenants/branding.py clean_cover), public branding like the logo.
    gallery_cover = models.ImageField(upload_to="studio-covers/", blank=True)
    primary_color = models.CharField(
        max_length=7,
        default="#1f2937",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #1f2937."))],
    )
    contact_email = models.EmailField(blank=True)
    watermark_text = models.CharField(
        max_length=60, blank=True, help_text="Tiled over the watermarked previews of portraits (empty: the name)."
    )
    # The language of the clients' pages and emails unless a client picks another on the page (tenants/i18n.py).
    client_language = models.CharField(
        max_length=16,
        choices=client_language_choices,
        default="en",
        help_text="Galleries, upload pages, consent and emails your clients see (they can switch on the page).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The dashboard's getting-started checklist (tenants/onboarding.py) was hidden by an owner or manager.
    onboarding_hidden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.custom_domain:
            self.custom_domain = self.custom_domain.strip().lower().rstrip(".")
        else:
            self.custom_domain = None
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class RetiredSlug(models.Model):
    """A studio address no longer in use (the studio was deleted or renamed): never given to another studio, so a
    link a client kept can't lead to someone else's pages (tenants/signup.py)."""

    slug = models.SlugField(max_length=50, unique=True)
    studio_name = models.CharField(max_length=120, blank=True)
    retired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class SignupRequest(models.Model):
    """A studio's self-serve sign-up, waiting for its owner to confirm the email address (tenants/signup.py).
    Nothing of the studio exists until then: no account, no studio, no address taken for good."""

    studio_name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=50, validators=[slug_validator])
    email = models.EmailField()
    full_name = models.CharField(max_length=150)
    password_hash = models.CharField(max_length=256, help_text="The chosen password, hashed; emptied once used.")
    # Random part of the emailed, signed link.
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_studio = models.ForeignKey(Studio, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["slug", "expires_at"], name="signup_slug_expires"),
            models.Index(fields=["email", "expires_at"], name="signup_email_expires"),
        ]

    def __str__(self) -> str:
        return f"Sign-up of {self.studio_name} ({self.email})"

    @property
    def is_pending(self) -> bool:
        return self.confirmed_at is None and self.expires_at > timezone.now()


# --- The tenant-owned base ------------------------------------------------------------------------------------


class TenantQuerySet(models.QuerySet):
    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list:
        objs = list(objs)
        for obj in objs:
            obj._check_studio_for_write()
        return super().bulk_create(objs, *args, **kwargs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """The default manager of tenant-owned models: filters to the current studio, raises with none set."""

    def get_queryset(self) -> TenantQuerySet:
        qs = super().get_queryset()
        if in_platform_context():
            return qs
        return qs.filter(studio_id=require_studio_id())

    def unscoped(self) -> TenantQuerySet:
        """Every studio's rows, as far as the database lets this connection see them. Grep for it."""
        return super().get_queryset()


class TenantOwned(models.Model):
    """Abstract base for everything a studio owns. The `studio` column is indexed, and it comes first in
    every composite index of a subclass. PostgreSQL row-level security is added to every concrete subclass's
    table by tenants/rls.py after each migrate."""

    studio = models.ForeignKey(Studio, on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = TenantManager()

    class Meta:
        abstract = True
        base_manager_name = "objects"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._check_studio_for_write()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self._check_studio_for_write()
        return super().delete(*args, **kwargs)

    def _check_studio_for_write(self) -> None:
        if in_platform_context():
            if self.studio_id is None:
                raise CrossTenantWrite(f"{type(self).__name__} saved in the platform context without a studio")
            return
        studio_id = require_studio_id()
        if self.studio_id is None:
            self.studio_id = studio_id
        elif self.studio_id != studio_id:
            raise CrossTenantWrite(
                f"{type(self).__name__} of studio {self.studio_id} written while studio {studio_id} is current"
            )


def is_tenant_owned(model: type[models.Model]) -> bool:
    return issubclass(model, TenantOwned) and not model._meta.abstract


# --- Memberships ----------------------------------------------------------------------------------------------


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    PHOTOGRAPHER = "photographer", _("Photographer")
    STAFF = "staff", _("Staff")


# Roles that may manage people, API keys and studio settings.
MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER})


class Membership(TenantOwned):
    """Ties a user to a studio with a role. End clients are never members."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["studio", "user"], name="membership_unique_user")]
        indexes = [models.Index(fields=["studio", "role"], name="membership_studio_role")]
        ordering = ["user__email"]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGING_ROLES


class Invitation(TenantOwned):
    """An owner or manager invites someone by email with a role; the emailed link is signed and expires."""

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    # Random part of the signed link: lets a studio's invitation be found only with its link.
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["studio", "email"], name="invitation_studio_email")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.email} ({self.get_role_display()})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def status(self) -> str:
        """ "accepted", "revoked", "pending" or "expired"."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "pending" if self.is_pending else "expired"


class ApiKey(TenantOwned):
    """A per-studio API key for integrations: stored hashed, shown once, named, revocable."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=128)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["studio", "revoked_at"], name="apikey_studio_revoked")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
