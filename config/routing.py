"""WebSocket routes (filled by the jobs/real-time work)."""

from django.urls import path

from jobs.consumers import ProcessingConsumer, TokenAuthMiddleware

websocket_urlpatterns: list = [
    path("ws/processing/", TokenAuthMiddleware(ProcessingConsumer.as_asgi())),
]
