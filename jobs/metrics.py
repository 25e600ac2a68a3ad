"""The job system's Prometheus metrics, read at scrape time (`/metrics`): task queue depth per cluster and jobs
by cluster and state. Registered once per process by JobsConfig.ready()."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from django.conf import settings
from django.db.models import Count
from django_q.brokers import get_broker
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobs.models import Job
from tenants.context import platform_context

log = structlog.get_logger(__name__)


class QueueDepthCollector(Collector):
    """Task queue depth per django-q2 cluster, and jobs by state, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("studio_task_queue_depth", "Tasks waiting in the broker", labels=["cluster"])
        for cluster in Job.Cluster.values:
            try:
                depth.add_metric([cluster], get_broker(settings.Q_QUEUES[cluster]).queue_size() or 0)
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the broker is down
                log.warning("metrics.queue_depth_failed", cluster=cluster, error=str(exc))
        yield depth
        yield from _job_state_metrics()

    def describe(self) -> list:
        return []


def _job_state_metrics() -> Iterator[GaugeMetricFamily]:
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


def ensure_collector() -> None:
    """Register the collector with Prometheus once per process (JobsConfig.ready)."""
    global _collector
    if _collector is None:
        _collector = QueueDepthCollector()
        REGISTRY.register(_collector)
