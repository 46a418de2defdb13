"""The ASGI middleware on a small FastAPI app: labels, bounded endpoints, errors, /metrics."""

from __future__ import annotations

import asyncio
import random
import string

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from starlette.middleware.base import BaseHTTPMiddleware

from perfstack.telemetry import PrometheusMiddleware, instrument_app
from perfstack.telemetry.contract import UNMATCHED_ENDPOINT
from perfstack.telemetry.metrics import Metrics


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [s.labels for m in registry.collect() for s in m.samples if s.name == name]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def client(registry: CollectorRegistry) -> TestClient:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(404, "gone")
        return {"id": item_id}

    @app.post("/items")
    def create() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unhandled")

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(3):
                await asyncio.sleep(0.04)
                yield b"x"

        return StreamingResponse(chunks())

    sub = FastAPI()

    @sub.get("/things/{name}")
    def thing(name: str) -> dict[str, str]:
        return {"name": name}

    app.mount("/v2", sub)
    instrument_app(app, Metrics(registry))
    return TestClient(app, raise_server_exceptions=False)


def test_every_request_is_counted_once_with_method_route_template_and_status(
    client: TestClient, registry: CollectorRegistry
) -> None:
    for i in range(5):
        assert client.get(f"/items/{i}").status_code == 200
    assert client.get("/items/404").status_code == 404
    assert client.post("/items").status_code == 200
    assert value(registry, "api_requests_total", method="GET", endpoint="/items/{item_id}", status="200") == 5
    assert value(registry, "api_requests_total", method="GET", endpoint="/items/{item_id}", status="404") == 1
    assert value(registry, "api_requests_total", method="POST", endpoint="/items", status="200") == 1
    assert value(registry, "api_request_duration_seconds_count", method="GET", endpoint="/items/{item_id}") == 6
    assert sum(s.get("endpoint") is not None for s in series(registry, "api_requests_total")) == 3


def test_a_thousand_random_unknown_paths_add_one_endpoint_value(
    client: TestClient, registry: CollectorRegistry
) -> None:
    rng = random.Random(7)
    for _ in range(1000):
        path = "/" + "".join(rng.choices(string.ascii_lowercase, k=12)) + f"/{rng.randint(0, 10**9)}"
        assert client.get(path).status_code == 404
    endpoints = {s["endpoint"] for s in series(registry, "api_requests_total")}
    assert endpoints == {UNMATCHED_ENDPOINT}
    assert value(registry, "api_requests_total", method="GET", endpoint=UNMATCHED_ENDPOINT, status="404") == 1000


def test_mounted_apps_report_the_full_template(client: TestClient, registry: CollectorRegistry) -> None:
    assert client.get("/v2/things/abc").status_code == 200
    assert value(registry, "api_requests_total", method="GET", endpoint="/v2/things/{name}", status="200") == 1


def test_an_unhandled_exception_counts_as_a_500(client: TestClient, registry: CollectorRegistry) -> None:
    assert client.get("/boom").status_code == 500
    assert value(registry, "api_requests_total", method="GET", endpoint="/boom", status="500") == 1


def test_an_unknown_method_is_grouped_as_other(client: TestClient, registry: CollectorRegistry) -> None:
    client.request("PROPFIND", "/items/1")
    assert value(registry, "api_requests_total", method="OTHER", endpoint="/items/{item_id}", status="405") == 1


def test_the_duration_covers_a_streamed_body(client: TestClient, registry: CollectorRegistry) -> None:
    assert client.get("/stream").content == b"xxx"
    assert value(registry, "api_request_duration_seconds_sum", method="GET", endpoint="/stream") >= 0.12


def test_metrics_endpoint_serves_the_contract_and_is_not_counted(
    client: TestClient, registry: CollectorRegistry
) -> None:
    client.get("/items/1")
    body = client.get("/metrics").text
    assert 'api_requests_total{endpoint="/items/{item_id}",method="GET",status="200"} 1.0' in body
    assert "db_query_duration_seconds" in body and "cache_requests_total" in body
    assert not [s for s in series(registry, "api_requests_total") if s["endpoint"] == "/metrics"]


def test_the_middleware_is_pure_asgi() -> None:
    assert not issubclass(PrometheusMiddleware, BaseHTTPMiddleware)


def test_metrics_are_gzipped_for_scrapers_that_accept_it_and_openmetrics_on_request(
    client: TestClient, registry: CollectorRegistry
) -> None:
    import gzip

    client.get("/items/1")
    zipped = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert b"api_requests_total" in zipped.content  # httpx decodes it transparently
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.endswith("# EOF\n")
    only = client.get("/metrics?name[]=api_requests_total", headers={"Accept-Encoding": "identity"}).text
    assert "api_requests_total{" in only and "db_query_duration_seconds" not in only
    assert gzip.decompress(gzip.compress(b"x")) == b"x"


def test_request_tallies_match_the_standard_collectors_semantics(registry: CollectorRegistry) -> None:
    from perfstack.telemetry.tally import RequestTally

    tally = RequestTally((0.1, 0.5))
    tally.observe("GET", "/a", "200", 0.05)
    tally.observe("GET", "/a", "500", 0.1)  # on a bound: counts in that bucket (le is inclusive)
    tally.observe("GET", "/a", "200", 2.0)
    reg = CollectorRegistry()
    reg.register(tally)
    get = reg.get_sample_value
    assert get("api_requests_total", {"method": "GET", "endpoint": "/a", "status": "200"}) == 2
    assert get("api_requests_total", {"method": "GET", "endpoint": "/a", "status": "500"}) == 1
    assert get("api_request_duration_seconds_bucket", {"method": "GET", "endpoint": "/a", "le": "0.1"}) == 2
    assert get("api_request_duration_seconds_bucket", {"method": "GET", "endpoint": "/a", "le": "0.5"}) == 2
    assert get("api_request_duration_seconds_bucket", {"method": "GET", "endpoint": "/a", "le": "+Inf"}) == 3
    assert get("api_request_duration_seconds_count", {"method": "GET", "endpoint": "/a"}) == 3
    assert abs(get("api_request_duration_seconds_sum", {"method": "GET", "endpoint": "/a"}) - 2.15) < 1e-9
