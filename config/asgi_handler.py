"""Django's ASGI handler with the request work done in one thread hop.

Every Lightbox view is synchronous (DRF, the ORM, pydicom). Django's stock ASGI handler
runs the middleware chain in async mode, so each of the eight middlewares enters a worker
thread twice (``process_request`` and ``process_response``), the request signals and
``response.close()`` take further hops, and each request gets a fresh thread of its own:
about 5 ms of thread hand-offs before any work, and a new database connection per request.

Here the request runs as under a threaded WSGI server: ``request_started``, the whole
middleware chain and view, and (for a response already in memory) ``response.close()``
with ``request_finished`` run as one synchronous call in a fixed pool of worker threads.
One hop per request, and each thread keeps its database connection between requests as
``CONN_MAX_AGE`` (or the pool) allows, because the connection signals now fire in the
thread that owns the connection. Streaming responses are sent as before (their async
iterators run on the event loop) and closed afterwards.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponse
from django.urls import set_script_prefix

from config.worker_balance import balancer, connection_closing

REQUEST_THREADS = int(os.environ.get("LIGHTBOX_REQUEST_THREADS", "16"))


class LightboxASGIHandler(ASGIHandler):
    # Django cuts bodies into ASGI messages of this size. Measured on a 50 MB WADO-RS study
    # retrieve: 64 kB 444 MB/s, 128 kB (with 256 kB batches) 560 MB/s, 1 MB 294 MB/s, 4 MB
    # 197 MB/s (uvicorn's flow control stalls on large writes).
    chunk_size = 128 * 1024

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=REQUEST_THREADS, thread_name_prefix="lightbox-request"
        )
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)  # one synchronous chain, as under WSGI

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope: dict, receive: Any, send: Any) -> None:
        if balancer.request_ends_connection(scope):
            send = connection_closing(send)  # this worker has more than its share
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            return

        async def respond_and_send() -> HttpResponse:
            response = await sync_to_async(
                self._respond, thread_sensitive=False, executor=self._executor
            )(request, scope)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while the body was sent
            return response

        # As in Django: a client disconnect cancels sending (a long stream stops).
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(respond_and_send()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await sync_to_async(self._finished, thread_sensitive=False)()
        else:
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=False)()
        body_file.close()

    def _respond(self, request: Any, scope: dict) -> HttpResponse:
        """The synchronous part, in one worker thread: signals, middleware, view."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # the body is in memory: fire request_finished here
        return response

    def _finished(self) -> None:
        signals.request_finished.send(sender=self.__class__)


def lightbox_asgi_application() -> LightboxASGIHandler:
    import django

    django.setup(set_prefix=False)
    return LightboxASGIHandler()
