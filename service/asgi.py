"""The ASGI app uvicorn imports (``service.asgi:app``), configured from the environment."""

from .app import create_app

app = create_app()
