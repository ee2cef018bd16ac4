"""ASGI entry point: ``uvicorn omniretail.asgi:app``."""

from omniretail.api import create_app

app = create_app()
