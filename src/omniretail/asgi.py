"""ASGI entry point: ``uvicorn omniretail.asgi:app``."""

from omniretail.api import create_app
from omniretail.core.config import get_settings

app = create_app()

if get_settings().dispatch_on_commit:
    from omniretail.jobs import enable_dispatch_on_commit

    enable_dispatch_on_commit()
