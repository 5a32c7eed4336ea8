"""The ASGI entry point for uvicorn: `uvicorn service.main:app`."""

from service.app import create_app
from service.observability import configure_logging
from service.settings import get_settings

configure_logging(get_settings())
app = create_app()
