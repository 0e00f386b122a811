"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.asgi_handler import lightbox_asgi_application

django_asgi_app = lightbox_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from dicom.storage import staging_cleanup  # noqa: E402

# Leftovers of a crashed process: partial uploads older than an hour (younger ones may
# belong to another process sharing the folder).
staging_cleanup(older_than_seconds=3600)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
