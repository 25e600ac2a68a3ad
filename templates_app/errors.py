"""The refusals of templates_app's actions: :class:`TemplateError` (the project's Refused: a message for people
and an HTTP status) and :class:`SettingsInvalid` (render settings that fail the checks, with the message of every
field, which forms and the API show next to the field)."""

from __future__ import annotations

from tenants.refusals import Refused


class TemplateError(Refused):
    """A refusal for people: `message` is shown as is, `status` is the HTTP status a view answers with; `field`
    names the form field it is about, when there is one."""

    def __init__(self, message: str, status: int = 400, *, field: str | None = None) -> None:
        super().__init__(message, status)
        self.field = field
        if field and self.status == 400:
            self.fields = {field: [message]}


class SettingsInvalid(TemplateError):
    """Render settings that fail the checks: `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        field, messages = next(iter(errors.items()))
        super().__init__(messages[0], 400, field=field)
        self.errors = errors
        self.fields = errors
