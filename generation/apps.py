from __future__ import annotations

from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Digital doubles and portraits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants.media import ALL_ROLES, MediaVariant, register_media, register_variant

        # Portraits: every member who can see the client's page; in a client's gallery only with an entitlement
        # (galleries.access.media_allowed), at full size or as the 2048 px web JPEG.
        register_media("generation.portrait", "image", roles=ALL_ROLES, audiences=("gallery",))
        register_variant("generation.portrait", "image", MediaVariant("web", max_side=2048, format="JPEG", quality=90))
        # Their small derivatives (generation/runs.py): the thumbnail and the watermarked preview, also to the API
        # key an integration listed them with. The gallery shows the watermarked preview only (the thumbnail has no
        # watermark).
        register_media("generation.portrait", "thumbnail", roles=ALL_ROLES, api_keys=True)
        register_media("generation.portrait", "preview", roles=ALL_ROLES, api_keys=True, audiences=("gallery",))
        # Instant portraits (generation/instant.py): every member who can see the photo set's page, and the API key
        # that listed them; never in a gallery (they were made before the double, from the set's photos).
        for field in ("image", "thumbnail", "preview"):
            register_media("generation.instantportrait", field, roles=ALL_ROLES, api_keys=field != "image")

        from generation import instant  # noqa: F401  (its erasure and export steps, its system check)
        from generation.jobs import worker_models
        from jobs.workers import register_worker_state_hook

        # Each gpu worker's beacon says which base models it has loaded (jobs/affinity.py sends a render to an idle
        # worker that has its model warm).
        register_worker_state_hook(worker_models)
        from generation import samples

        samples.register()  # templates' sample images: the designer's previews (templates_app/samples.py)

        from generation.dashboard import register_dashboard

        register_dashboard()  # sets ready to train, failed doubles, and their activity (tenants.dashboard)
