from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Studios and accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, pre_save

        from tenants import checks  # noqa: F401  (system checks)
        from tenants.models import Studio
        from tenants.onboarding import register_checklist
        from tenants.signals import secure_tenant_tables
        from tenants.signup import retire_slug_on_delete, retire_slug_on_rename

        post_migrate.connect(secure_tenant_tables, dispatch_uid="tenants.rls.post_migrate")
        # A studio's address is never given to another one (tenants/signup.py).
        post_delete.connect(retire_slug_on_delete, sender=Studio, dispatch_uid="tenants.retire_slug_on_delete")
        pre_save.connect(retire_slug_on_rename, sender=Studio, dispatch_uid="tenants.retire_slug_on_rename")
        # The dashboard's getting-started checklist, first of its panels (tenants/onboarding.py).
        register_checklist()
