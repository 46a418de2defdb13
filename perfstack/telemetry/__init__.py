"""The metrics contract and the instrumentation that produces it.

- :mod:`.contract`: metric names, labels and buckets (the one source of truth).
- :mod:`.asgi`: :class:`PrometheusMiddleware` and ``/metrics`` for FastAPI/Starlette.
- :mod:`.sqlalchemy`: query timing and pool metrics for SQLAlchemy 2 engines.
- :mod:`.cache`: :class:`Cache`, a Redis cache-aside helper that never fails a request.
"""

from .asgi import PrometheusMiddleware, instrument_app, metrics_app
from .metrics import Metrics, default_metrics

__all__ = ["Metrics", "PrometheusMiddleware", "default_metrics", "instrument_app", "metrics_app"]
