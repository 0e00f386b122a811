"""Signal receivers: every newly stored instance announces itself after commit."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from dicom.models import Instance
from jobs.events import instance_stored_on_commit


@receiver(post_save, sender=Instance, dispatch_uid="jobs_instance_stored")
def instance_stored(sender: Any, instance: Instance, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        instance_stored_on_commit(instance=instance)
