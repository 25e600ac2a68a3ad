"""Forms of the studio's gallery pages. They check input only; the actions are in galleries.services (which
checks again: the API and tasks call the services without these forms)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from galleries import services
from galleries.models import Entitlement, Gallery, GallerySettings


def end_of_day(day: date) -> datetime:
    """The last minute of a day in the current time zone: a gallery "open until 12 May" closes that night."""
    return timezone.make_aware(datetime.combine(day, time(23, 59)), timezone.get_current_timezone())


def _future_day(day: date | None) -> date | None:
    if day is not None and end_of_day(day) <= timezone.now():
        raise forms.ValidationError(_("Choose a date in the future."))
    if day is not None and day > timezone.localdate() + timedelta(days=services.MAX_EXPIRY_DAYS * 3):
        raise forms.ValidationError(
            _("A gallery can stay open for %(max)s days at most.") % {"max": services.MAX_EXPIRY_DAYS * 3}
        )
    return day


PIN_PATTERN = f"[0-9]{{{services.MIN_PIN_DIGITS},{services.MAX_PIN_DIGITS}}}"


class DateInput(forms.DateInput):
    input_type = "date"


def _ids(values: list[str], label: str) -> list[int]:
    out: list[int] = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            raise forms.ValidationError(_("“%(value)s” is not a portrait id.") % {"value": value}) from None
    return out


class PortraitIdsField(forms.MultipleChoiceField):
    """Portrait ids from checkboxes; whether they may go in the gallery is the service's call (400 naming one)."""

    widget = forms.CheckboxSelectMultiple

    def valid_value(self, value: Any) -> bool:
        return str(value).isdigit()

    def clean(self, value: Any) -> list[int]:
        return _ids(super().clean(value), "portrait")


class GalleryCreateForm(forms.Form):
    title = forms.CharField(max_length=services.MAX_TITLE_CHARS, required=False, label=gettext_lazy("Title"))
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=services.MAX_MESSAGE_CHARS,
        label=gettext_lazy("Welcome note"),
        help_text=gettext_lazy("Shown at the top of the gallery and in the email."),
    )
    portraits = PortraitIdsField(required=False, label=gettext_lazy("Portraits"))
    expires_on = forms.DateField(
        required=False,
        widget=DateInput,
        label=gettext_lazy("Open until"),
        help_text=gettext_lazy("Empty: the gallery never closes."),
    )
    password = forms.CharField(
        required=False,
        max_length=services.MAX_PASSWORD_CHARS,
        label=gettext_lazy("Password (optional)"),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=services.interpolated_lazy(
            gettext_lazy(
                "At least %(min)s characters. The client types it to open the gallery. Tell them yourself: it is "
                "never emailed."
            ),
            min=services.MIN_PASSWORD_CHARS,
        ),
    )
    pin = forms.CharField(
        required=False,
        max_length=8,
        label=gettext_lazy("Download PIN (optional)"),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": PIN_PATTERN}),
        help_text=services.interpolated_lazy(
            gettext_lazy("%(min)s to %(max)s digits, asked before the first download."),
            min=services.MIN_PIN_DIGITS,
            max=services.MAX_PIN_DIGITS,
        ),
    )
    allow_more_like_me = forms.BooleanField(required=False, label=gettext_lazy("Let the client ask for “more like me”"))

    def clean_expires_on(self) -> date | None:
        return _future_day(self.cleaned_data.get("expires_on"))

    def clean_pin(self) -> str:
        pin = (self.cleaned_data.get("pin") or "").strip()
        if pin and not services.PIN_RE.match(pin):
            raise forms.ValidationError(services.PIN_RULE)
        return pin


class GalleryEditForm(forms.Form):
    title = forms.CharField(max_length=services.MAX_TITLE_CHARS, label=gettext_lazy("Title"))
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=services.MAX_MESSAGE_CHARS,
        label=gettext_lazy("Welcome note"),
    )
    expires_on = forms.DateField(
        required=False,
        widget=DateInput,
        label=gettext_lazy("Open until"),
        help_text=gettext_lazy("Empty: the gallery never closes."),
    )
    allow_more_like_me = forms.BooleanField(required=False, label=gettext_lazy("Let the client ask for “more like me”"))
    download_limit = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=services.MAX_DOWNLOAD_LIMIT,
        label=gettext_lazy("Downloads per portrait"),
        help_text=gettext_lazy("For new grants. Empty: the studio's setting; 0: unlimited."),
    )

    def __init__(self, *args: Any, gallery: Gallery | None = None, **kwargs: Any) -> None:
        if gallery is not None and "initial" not in kwargs and not args:
            kwargs["initial"] = {
                "title": gallery.title,
                "message": gallery.message,
                "expires_on": timezone.localtime(gallery.expires_at).date() if gallery.expires_at else None,
                "allow_more_like_me": gallery.allow_more_like_me,
                "download_limit": gallery.download_limit,
            }
        self.gallery = gallery
        super().__init__(*args, **kwargs)

    def clean_expires_on(self) -> date | None:
        day = self.cleaned_data.get("expires_on")
        current = self.gallery.expires_at if self.gallery is not None else None
        if day is not None and current is not None and timezone.localtime(current).date() == day:
            return day  # unchanged, even when that day has passed (an expired gallery being edited)
        return _future_day(day)

    def expires_at(self) -> datetime | None:
        """The new expiry moment: unchanged when the day is the current one's (keeps its time of day)."""
        day = self.cleaned_data.get("expires_on")
        current = self.gallery.expires_at if self.gallery is not None else None
        if day is not None and current is not None and timezone.localtime(current).date() == day:
            return current
        return end_of_day(day) if day is not None else None


class PasswordForm(forms.Form):
    password = forms.CharField(
        min_length=services.MIN_PASSWORD_CHARS,
        max_length=services.MAX_PASSWORD_CHARS,
        label=gettext_lazy("New password"),
        help_text=services.interpolated_lazy(
            gettext_lazy("At least %(min)s characters."), min=services.MIN_PASSWORD_CHARS
        ),
        strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"required": gettext_lazy("Type the password the client will use.")},
    )


class PinForm(forms.Form):
    pin = forms.RegexField(
        regex=services.PIN_RE,
        label=gettext_lazy("New download PIN"),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": PIN_PATTERN}),
        help_text=services.interpolated_lazy(
            gettext_lazy("%(min)s to %(max)s digits."), min=services.MIN_PIN_DIGITS, max=services.MAX_PIN_DIGITS
        ),
        error_messages={
            "invalid": services.PIN_RULE,
            "required": services.interpolated_lazy(
                gettext_lazy("Type a PIN of %(min)s to %(max)s digits."),
                min=services.MIN_PIN_DIGITS,
                max=services.MAX_PIN_DIGITS,
            ),
        },
    )


class PortraitsForm(forms.Form):
    portraits = PortraitIdsField(error_messages={"required": gettext_lazy("Choose at least one portrait.")})


class GrantForm(PortraitsForm):
    size = forms.ChoiceField(
        choices=Entitlement.Size.choices, initial=Entitlement.Size.FULL, label=gettext_lazy("Size")
    )


class GallerySettingsForm(forms.ModelForm):
    class Meta:
        model = GallerySettings
        fields = ["expiry_days", "reminder_days", "download_limit", "allow_more_like_me"]
        labels = {
            "expiry_days": gettext_lazy("Days a new gallery stays open"),
            "reminder_days": gettext_lazy("Remind the client this many days before it closes"),
            "download_limit": gettext_lazy("Downloads per entitled portrait"),
            "allow_more_like_me": gettext_lazy("New galleries let clients ask for “more like me”"),
        }
        help_texts = {
            "expiry_days": gettext_lazy("0: galleries never close."),
            "reminder_days": gettext_lazy("0: no reminder. Sent once, to galleries that were emailed to the client."),
            "download_limit": gettext_lazy("Per portrait and size. 0: unlimited. A gallery can set its own."),
        }

    def clean_expiry_days(self) -> int:
        return self._bounded("expiry_days", services.MAX_EXPIRY_DAYS)

    def clean_reminder_days(self) -> int:
        return self._bounded("reminder_days", services.MAX_REMINDER_DAYS)

    def clean_download_limit(self) -> int:
        return self._bounded("download_limit", services.MAX_DOWNLOAD_LIMIT)

    def _bounded(self, name: str, high: int) -> int:
        value = self.cleaned_data[name]
        if value > high:
            raise forms.ValidationError(_("At most %(max)s.") % {"max": high})
        return value
