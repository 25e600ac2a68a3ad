import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_healthz_is_503_when_the_broker_is_down(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error")


def test_ping_is_trivial(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/ping")
    assert response.content == b"pong"


def test_metrics_include_queue_depth_and_requests(client):
    client.get("/ping")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'studio_task_queue_depth{cluster="default"}' in text
    assert 'studio_task_queue_depth{cluster="gpu"}' in text
    assert "django_http_requests_total_by_method_total" in text


@override_settings(METRICS_TOKEN="s3cret")
def test_metrics_need_the_token_when_configured(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_request_id_header(client):
    response = client.get("/ping", HTTP_X_REQUEST_ID="abc123")
    assert response["X-Request-ID"] == "abc123"
