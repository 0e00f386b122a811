from __future__ import annotations

import io
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application
from dicom.ingest import instance_ingest
from dicom.tests.factories import ct_variant
from jobs.batches import batch_create_from_uploads
from jobs.events import _groups_listened
from jobs.services import job_run

# Committed data: the consumer, like every Channels database call, closes stale connections.
pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/processing/"


def token_for(user) -> str:
    return str(AccessToken.for_user(user))


def batch_for(user, count: int):
    uploads = [SimpleUploadedFile(f"ct-{i}.dcm", ct_variant()) for i in range(count)]
    return batch_create_from_uploads(uploads=uploads, owner=user, patient={})


async def connected(user) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"{PATH}?token={token_for(user)}")
    accepted, _ = await socket.connect()
    assert accepted
    assert (await socket.receive_json_from())["type"] == "auth.ok"
    return socket


async def progress_until_finished(socket) -> list[dict]:
    events = []
    while True:
        event = await socket.receive_json_from(timeout=5)
        if event["type"] != "job.progress":
            continue
        events.append(event)
        if event["status"] in ("completed", "failed"):
            return events


def test_a_socket_sees_its_own_job_progress_in_order_to_100_and_nothing_of_another_users(
    owner, outsider
):
    mine, theirs = batch_for(owner, 4), batch_for(outsider, 2)

    async def scenario():
        owner_socket, outsider_socket = await connected(owner), await connected(outsider)
        await database_sync_to_async(job_run)(job_id=mine.pk)
        events = await progress_until_finished(owner_socket)
        assert {e["job_id"] for e in events} == {str(mine.pk)}
        processed = [e["processed"] for e in events]
        assert processed == sorted(processed) and processed[-1] == 4
        assert [e["percentage"] for e in events][-1] == 100.0
        assert events[0]["status"] == "processing" and events[-1]["status"] == "completed"
        assert {"job_id", "status", "processed", "total", "percentage"} <= set(events[-1])
        assert await outsider_socket.receive_nothing(timeout=0.3)
        await database_sync_to_async(job_run)(job_id=theirs.pk)
        assert (await progress_until_finished(outsider_socket))[-1]["job_id"] == str(theirs.pk)
        assert all(
            e["type"] != "job.progress" or e["job_id"] == str(mine.pk)
            for e in await _drain(owner_socket)
        )
        await owner_socket.disconnect()
        await outsider_socket.disconnect()

    async_to_sync(scenario)()


async def _drain(socket) -> list[dict]:
    events = []
    while not await socket.receive_nothing(timeout=0.2):
        events.append(await socket.receive_json_from())
    return events


@pytest.mark.parametrize("series_uid", [None, "1.2.3.4.77.1"], ids=["new-series", "same-series"])
def test_image_uploaded_reaches_the_owner_and_the_shared_group_only(
    series_uid, owner, colleague, outsider, django_capture_on_commit_callbacks
):
    def store():
        data = ct_variant(study_uid="1.2.3.4.77", series_uid=series_uid)
        return instance_ingest(stream=io.BytesIO(data), owner=owner, source="test").instance

    first = store()
    first.series.study.shared_with.add(Group.objects.get(name="radiology"))

    def store_second():
        with django_capture_on_commit_callbacks(execute=True):
            return store()

    async def scenario():
        sockets = [await connected(u) for u in (owner, colleague, outsider)]
        second = await database_sync_to_async(store_second)()
        for socket in sockets[:2]:
            event = await socket.receive_json_from(timeout=5)
            assert event["type"] == "IMAGE_UPLOADED"
            assert event["image"]["sopInstanceUID"] == second.sop_instance_uid
            assert event["image"]["studyInstanceUID"] == "1.2.3.4.77"
            assert event["image"]["imageID"] == str(second.pk)
            assert await socket.receive_nothing(timeout=0.2)  # once, not once per group
        assert await sockets[2].receive_nothing(timeout=0.3)
        for socket in sockets:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_a_socket_may_authenticate_with_its_first_message(owner):
    job = batch_for(owner, 1)

    async def scenario():
        socket = WebsocketCommunicator(application, PATH)
        assert (await socket.connect())[0]
        assert await socket.receive_nothing(timeout=0.1)
        await socket.send_json_to({"type": "auth", "token": token_for(owner)})
        assert (await socket.receive_json_from())["type"] == "auth.ok"
        await database_sync_to_async(job_run)(job_id=job.pk)
        assert (await progress_until_finished(socket))[-1]["percentage"] == 100.0
        await socket.disconnect()

    async_to_sync(scenario)()


def test_a_bad_token_closes_the_socket_and_joins_nothing(owner):
    async def scenario():
        socket = WebsocketCommunicator(application, PATH)
        assert (await socket.connect())[0]
        await socket.send_json_to({"type": "auth", "token": "not-a-jwt"})
        assert (await socket.receive_json_from())["code"] == "invalid_token"
        assert (await socket.receive_output(timeout=1))["type"] == "websocket.close"
        by_query = WebsocketCommunicator(application, f"{PATH}?token=forged")
        assert (await by_query.connect())[0]
        await by_query.send_json_to({"type": "ping"})
        assert (await by_query.receive_json_from())["type"] == "pong"  # connected, not joined
        await by_query.disconnect()

    async_to_sync(scenario)()


def test_a_session_from_a_foreign_origin_is_not_trusted(owner, client):
    client.force_login(owner)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def scenario():
        good = WebsocketCommunicator(
            application,
            PATH,
            headers=[
                (b"cookie", cookie),
                (b"origin", b"http://localhost:8000"),
                (b"host", b"localhost"),
            ],
        )
        assert (await good.connect())[0]
        assert (await good.receive_json_from())["type"] == "auth.ok"
        evil = WebsocketCommunicator(
            application,
            PATH,
            headers=[
                (b"cookie", cookie),
                (b"origin", b"https://evil.example"),
                (b"host", b"localhost"),
            ],
        )
        assert (await evil.connect())[0]
        assert await evil.receive_nothing(timeout=0.2)
        await good.disconnect()
        await evil.disconnect()

    async_to_sync(scenario)()


def test_only_groups_with_a_live_channel_are_sent_to_on_redis():
    layer = get_channel_layer()
    if not isinstance(layer, RedisChannelLayer):
        pytest.skip("the Redis channel layer is used when REDIS_URL is set")
    tag = uuid.uuid4().hex[:8]
    listened, stale, empty = f"listened-{tag}", f"stale-{tag}", f"empty-{tag}"

    async def scenario():
        await layer.group_add(listened, await layer.new_channel())
        too_old = time.time() - layer.group_expiry - 60  # a socket that died long ago
        stale_key = layer._group_key(stale)
        await layer.connection(layer.consistent_hash(stale)).zadd(stale_key, {"x!y": too_old})
        return await _groups_listened(layer, {listened, stale, empty})

    assert async_to_sync(scenario)() == {listened}
