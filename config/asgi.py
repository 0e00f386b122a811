"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.asgi_handler import lightbox_asgi_application

django_asgi_app = lightbox_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from config.worker_balance import lifespan  # noqa: E402
from dicom.storage import staging_cleanup  # noqa: E402

# Leftovers of a crashed process: partial uploads older than an hour (younger ones may
# belong to another process sharing the folder).
staging_cleanup(older_than_seconds=3600)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        "lifespan": lifespan,  # balances persistent connections across worker processes
    }
)

# What is loaded by now (Django, every app and view, pydicom's dictionaries) lives as long as
# the process. Frozen, it is left out of the garbage collector's full collections: those
# walked some 120,000 start-up objects and stopped the process for about 60 ms (once every
# few hundred uploads); now they take about 4 ms.
_ = get_resolver().url_patterns  # import every view now, not at the first request
gc.collect()
gc.freeze()
