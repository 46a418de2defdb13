"""The reference API: the plan's endpoints on FastAPI, SQLAlchemy 2, PostgreSQL and Redis,
instrumented only with :mod:`perfstack.telemetry`. See ``python -m service --help``."""
