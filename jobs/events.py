"""Real-time events over Channels groups.

Groups: ``user-<id>`` (every socket of a user), ``group-<id>`` (every member of an auth
group) and ``staff``. Job progress goes to the job owner's group only. ``IMAGE_UPLOADED``
goes to the study owner's group, the group of every auth group the study is shared with
and ``staff``: exactly the people :meth:`Study.objects.visible_to` lets see it. Sockets
may belong to several of those groups, so each event carries an ``event_id`` the
consumer uses to deliver it once.

Publishing never fails the caller: with no channel layer, or Redis down, the event is
logged and dropped (clients can always poll the status endpoints).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from jobs.models import Job

logger = logging.getLogger(__name__)

STAFF_GROUP = "staff"


def user_group(user_id: Any) -> str:
    return f"user-{user_id}"


def auth_group(group_id: Any) -> str:
    return f"group-{group_id}"


def job_event(job: Job) -> dict[str, Any]:
    return {
        "type": "job.progress",
        "job_id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "processed": job.processed,
        "failed": job.failed,
        "total": job.total,
        "percentage": job.percentage,
    }


def job_progress_publish(*, job: Job) -> None:
    event = job_event(job)
    event["event_id"] = uuid.uuid4().hex
    group_send(user_group(job.owner_id), event)


def image_event(instance: Any) -> dict[str, Any]:
    """Seed 002's image shape for an instance stored in the archive."""
    series = instance.series
    study = series.study
    acquired = instance.acquisition_date or instance.content_date or study.study_date
    return {
        "imageID": str(instance.pk),
        "examenID": None,
        "studyInstanceUID": study.study_instance_uid,
        "seriesInstanceUID": series.series_instance_uid,
        "sopInstanceUID": instance.sop_instance_uid,
        "dateAcquisition": f"{acquired.isoformat()}T00:00:00.000Z" if acquired else None,
        "modalite": series.modality,
        "description": series.series_description or study.study_description,
        "url": f"/viewer/api/images/{instance.pk}/file/",
        "studyId": study.pk,
        "seriesId": series.pk,
    }


def instance_stored_on_commit(*, instance: Any) -> None:
    transaction.on_commit(lambda: image_uploaded_publish(instance=instance))


def image_uploaded_publish(*, instance: Any) -> None:
    """Announce a stored instance to its owner, the groups it is shared with and staff.
    Built from the rows the ingest already holds. The study's shares take one query,
    unless the ingest already knows there are none (``study.is_shared`` is False)."""
    from dicom.models import Study

    study = instance.series.study
    groups = [STAFF_GROUP]
    if study.owner_id:
        groups.append(user_group(study.owner_id))
    if getattr(study, "is_shared", True):
        shares = Study.shared_with.through.objects.filter(study_id=study.pk)
        groups += [auth_group(pk) for pk in shares.values_list("group_id", flat=True)]
    event = {"type": "image.uploaded", "event_id": uuid.uuid4().hex, "image": image_event(instance)}
    groups_send(groups, event)


def group_send(group: str, message: dict[str, Any]) -> None:
    groups_send([group], message)


def groups_send(groups: list[str], message: dict[str, Any]) -> None:
    """Publish one event to several groups in one hop to the event loop.

    With a shared (Redis) layer the send runs on one background thread, in order, so a
    request or a job item never waits for it; events are best effort either way. The
    in-memory layer (one process, tests) is called inline: its queues belong to the
    caller's event loop.
    """
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        for group in groups:
            await layer.group_send(group, message)

    def send(run: Any) -> None:
        try:
            run()
        except Exception:  # noqa: BLE001 - events are best effort; never fail the caller
            logger.warning(
                "event not published groups=%s type=%s", len(groups), message.get("type")
            )

    if isinstance(layer, InMemoryChannelLayer):
        send(async_to_sync(send_all))
    else:
        _publisher().submit(send, lambda: _publisher_loop().run_until_complete(send_all()))


@functools.cache
def _publisher() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lightbox-events")


_publisher_state = threading.local()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """The publisher thread's own event loop, kept for its lifetime: the Redis layer's
    connections belong to a loop, so a loop per event (``async_to_sync``) would open and
    close a Redis connection for every event."""
    loop = getattr(_publisher_state, "loop", None)
    if loop is None:
        loop = _publisher_state.loop = asyncio.new_event_loop()
    return loop
