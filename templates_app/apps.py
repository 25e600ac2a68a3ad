from __future__ import annotations

from django.apps import AppConfig


class TemplatesAppConfig(AppConfig):
    name = "templates_app"
    verbose_name = "Portrait templates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Covers and reference images are served like every private file: through signed, expiring links that
        # tenants/media.py checks (every member may see them; API keys too, for the templates API).
        from tenants.media import ALL_ROLES, register_media

        fields = (("templates_app.template", "cover_image"), ("templates_app.templateversion", "reference_image"))
        for label, field in fields:
            register_media(label, field, roles=ALL_ROLES, api_keys=True)

        from templates_app import onboarding

        onboarding.register()  # the checklist's "publish your first template" step
