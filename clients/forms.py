"""Forms of the studio's client pages. They check input only; the actions are in clients.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from clients.groups import MAX_MEMBERS, MIN_MEMBERS
from clients.models import Client

SEARCH_MAX_CHARS = 100


class ClientSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=SEARCH_MAX_CHARS, label=_("Search clients"), strip=True)


class ClientForm(forms.Form):
    name = forms.CharField(
        max_length=Client._meta.get_field("name").max_length,
        label=_("Name"),
        error_messages={"required": _("Enter the client's name.")},
    )
    email = forms.EmailField(
        required=False, label=_("Email"), error_messages={"invalid": _("Enter a valid email address.")}
    )
    phone = forms.CharField(max_length=Client._meta.get_field("phone").max_length, required=False, label=_("Phone"))
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000, label=_("Notes"))
    consent_in_person = forms.BooleanField(
        required=False,
        label=_("Consent collected in person"),
        help_text=_("Tick only if the client has read and agreed to the studio's current consent text with you."),
    )


class ConsentTextForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        max_length=20000,
        label=_("Consent text"),
        error_messages={"required": _("The consent text can't be empty.")},
    )


class EraseClientForm(forms.Form):
    """The "delete everything about this client" confirmation: the client's name typed in full confirms it."""

    confirm = forms.CharField(max_length=200, label=_("Type the client's name to confirm"), strip=True)

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        self.fields["confirm"].label = _("Type “%(name)s” to confirm") % {"name": client.name}

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != self.client.name.strip():
            raise forms.ValidationError(
                _("Type the client's name exactly as shown (%(name)s) to delete everything about them.")
                % {"name": self.client.name}
            )
        return value


class SendLinkForm(forms.Form):
    email = forms.EmailField(label=_("Send to"), error_messages={"required": _("Enter the client's email address.")})


class SelfConsentForm(forms.Form):
    agree = forms.BooleanField(
        label=_("I have read and agree to this"),
        error_messages={"required": _("Tick the box to agree before uploading your photos.")},
    )


class GroupForm(forms.Form):
    """A group's name, notes and members in slot order ("Person 1" fills {subject_1}): 2 to 6 of the clients who
    can join a group (active, consent on record). The checks beyond input are clients.groups'."""

    name = forms.CharField(max_length=150, label=_("Group name"), error_messages={"required": _("Name the group.")})
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000, label=_("Notes"))

    def __init__(self, *args: Any, candidates: Any, initial_members: list[Client] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        members = list(initial_members or [])
        for index in range(1, MAX_MEMBERS + 1):
            self.fields[f"member_{index}"] = forms.ModelChoiceField(
                queryset=candidates,
                required=index <= MIN_MEMBERS,
                label=_("Person %(number)s") % {"number": index},
                empty_label="—" if index > MIN_MEMBERS else _("Choose a client"),
                initial=members[index - 1].pk if index <= len(members) else None,
                help_text=_("Fills {subject_%(number)s} of group templates.") % {"number": index}
                if index <= MIN_MEMBERS
                else "",
                error_messages={
                    "required": _("Choose person %(number)s: a group has at least %(min)s people.")
                    % {"number": index, "min": MIN_MEMBERS},
                    "invalid_choice": _("Choose one of the studio's clients with consent on record."),
                },
            )

    def members(self) -> list[Client]:
        return [client for name, client in self.cleaned_data.items() if name.startswith("member_") and client]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        chosen = [c.pk for name, c in data.items() if name.startswith("member_") and c]
        if len(chosen) != len(set(chosen)):
            raise forms.ValidationError(_("A client can be in a group only once."))
        return data
