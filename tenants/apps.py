from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Studios and accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants import checks  # noqa: F401  (system checks)
        from tenants.rls import install_on_open_connections, install_scope_wrapper
        from tenants.signals import secure_tenant_tables

        connection_created.connect(install_scope_wrapper, dispatch_uid="tenants.rls.scope_wrapper")
        install_on_open_connections()
        post_migrate.connect(secure_tenant_tables, dispatch_uid="tenants.rls.post_migrate")
