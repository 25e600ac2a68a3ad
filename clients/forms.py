"""Forms of the studio's client pages. They check input only; the actions are in clients.services."""

from __future__ import annotations

from typing import Any

from django import forms

from clients.models import Client

SEARCH_MAX_CHARS = 100


class ClientSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=SEARCH_MAX_CHARS, label="Search clients", strip=True)


class ClientForm(forms.Form):
    name = forms.CharField(
        max_length=Client._meta.get_field("name").max_length,
        label="Name",
        error_messages={"required": "Enter the client's name."},
    )
    email = forms.EmailField(required=False, label="Email", error_messages={"invalid": "Enter a valid email address."})
    phone = forms.CharField(max_length=Client._meta.get_field("phone").max_length, required=False, label="Phone")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000, label="Notes")
    consent_in_person = forms.BooleanField(
        required=False,
        label="Consent collected in person",
        help_text="Tick only if the client has read and agreed to the studio's current consent text with you.",
    )


class ConsentTextForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        max_length=20000,
        label="Consent text",
        error_messages={"required": "The consent text can't be empty."},
    )


class EraseClientForm(forms.Form):
    """The "delete everything about this client" confirmation: the client's name typed in full confirms it."""

    confirm = forms.CharField(max_length=200, label="Type the client's name to confirm", strip=True)

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        self.fields["confirm"].label = f"Type “{client.name}” to confirm"

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != self.client.name.strip():
            raise forms.ValidationError(
                f"Type the client's name exactly as shown ({self.client.name}) to delete everything about them."
            )
        return value


class SendLinkForm(forms.Form):
    email = forms.EmailField(label="Send to", error_messages={"required": "Enter the client's email address."})


class SelfConsentForm(forms.Form):
    agree = forms.BooleanField(
        label="I have read and agree to this",
        error_messages={"required": "Tick the box to agree before uploading your photos."},
    )
