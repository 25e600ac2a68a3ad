from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Studios and accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants import checks  # noqa: F401  (system checks)
        from tenants.signals import secure_tenant_tables

        post_migrate.connect(secure_tenant_tables, dispatch_uid="tenants.rls.post_migrate")
