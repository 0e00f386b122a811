"""WebSocket routes (filled by the jobs/real-time work)."""

websocket_urlpatterns: list = []
