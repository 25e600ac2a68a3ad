"""Operations endpoints: health check, Prometheus metrics (with task queue depth), and a trivial view."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)
CLUSTERS = ("default", "gpu")


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


class QueueDepthCollector(Collector):
    """Task queue depth per django-q2 cluster, and jobs by state, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django_q.brokers import get_broker

        depth = GaugeMetricFamily("studio_task_queue_depth", "Tasks waiting in the broker", labels=["cluster"])
        for cluster in CLUSTERS:
            try:
                depth.add_metric([cluster], get_broker(settings.Q_QUEUES[cluster]).queue_size() or 0)
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the broker is down
                log.warning("metrics.queue_depth_failed", cluster=cluster, error=str(exc))
        yield depth
        yield from _job_state_metrics()

    def describe(self) -> list:
        return []


def _job_state_metrics() -> Iterator[GaugeMetricFamily]:
    try:
        from django.db.models import Count

        from generation.models import Job
        from tenants.context import platform_context
    except ImportError:
        return
    jobs = GaugeMetricFamily("studio_jobs", "Jobs by cluster and state", labels=["cluster", "state"])
    try:
        with platform_context():  # platform metrics span every studio, deliberately
            rows = Job.objects.values_list("cluster", "state").annotate(n=Count("id")).order_by()
            for cluster, state, n in rows:
                jobs.add_metric([cluster, state], n)
    except Exception as exc:  # noqa: BLE001
        log.warning("metrics.jobs_failed", error=str(exc))
        return
    yield jobs


_collector: QueueDepthCollector | None = None


def _ensure_collector() -> None:
    global _collector
    if _collector is None:
        _collector = QueueDepthCollector()
        REGISTRY.register(_collector)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics. With METRICS_TOKEN set, a matching `Authorization: Bearer` header is required."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("Metrics need the bearer token (METRICS_TOKEN).", status=401, content_type="text/plain")
    _ensure_collector()
    return ExportToDjangoView(request)
