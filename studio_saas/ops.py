"""Operations endpoints: health check, Prometheus metrics (the job system adds its queue depth and
job counts: jobs/metrics.py), and a trivial view."""

from __future__ import annotations

import hmac

import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView

log = structlog.get_logger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    return _check_database()  # the ORM broker lives in the database


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the task broker answer, 503 (with which one failed) otherwise."""
    checks: dict[str, str] = {}
    healthy = True
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure makes the instance unhealthy
            log.warning("healthz.failed", check=name, error=str(exc))
            checks[name] = f"error: {type(exc).__name__}"
            healthy = False
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


def ping(request: HttpRequest) -> HttpResponse:
    """The trivial view: no database, no template. The baseline of bench/web.py."""
    return HttpResponse("pong", content_type="text/plain")


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics. With METRICS_TOKEN set, a matching `Authorization: Bearer` header is required."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("Metrics need the bearer token (METRICS_TOKEN).", status=401, content_type="text/plain")
    return ExportToDjangoView(request)
