from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Clients and photo intake"
    default_auto_field = "django.db.models.BigAutoField"
