"""Sharing a study with a group: its members then see it through the one visibility rule
(:meth:`dicom.models.StudyQuerySet.visible_to`).

Only the study's owner (or staff) may change its sharing; a user who sees the study through
a group may not re-share it (403), and a user who can't see it at all gets 404 from the
selector before reaching this module.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import Group
from rest_framework import exceptions

from dicom.errors import LightboxError, NotFound
from dicom.models import Study

logger = logging.getLogger(__name__)

MSG_NOT_OWNER = "Only the study's owner (or staff) can change its sharing."
MSG_NO_GROUP = "Group {group!r} not found."
MSG_GROUP_REQUIRED = 'Send the group to share with: {"group": "<name or id>"}.'
MSG_NOT_SHARED = "The study is not shared with this group."


class GroupNotFound(LightboxError):
    code = "group_not_found"


def group_resolve(*, value: Any) -> Group:
    """A group by id (an integer or a numeric string) or by exact name."""
    text = str(value if value is not None else "").strip()
    if not text:
        raise LightboxError(MSG_GROUP_REQUIRED, code="group_required")
    group = Group.objects.filter(name=text).first()
    if group is None and text.isdigit():
        group = Group.objects.filter(pk=int(text)).first()
    if group is None:
        raise GroupNotFound(MSG_NO_GROUP.format(group=text[:150]))
    return group


def _check_can_share(*, study: Study, by: Any) -> None:
    if not (getattr(by, "is_staff", False) or study.owner_id == getattr(by, "pk", None)):
        raise exceptions.PermissionDenied(MSG_NOT_OWNER)


def study_share(*, study: Study, group: Group, by: Any) -> bool:
    """Share ``study`` with ``group``; True if it was not shared with it before."""
    _check_can_share(study=study, by=by)
    created = not study.shared_with.filter(pk=group.pk).exists()
    study.shared_with.add(group)
    logger.info("study %s shared with group %s by user %s", study.pk, group.pk, by.pk)
    return created


def study_unshare(*, study: Study, group_id: int, by: Any) -> None:
    """Stop sharing ``study`` with a group; NotFound if it wasn't shared with it."""
    _check_can_share(study=study, by=by)
    group = study.shared_with.filter(pk=group_id).first()
    if group is None:
        raise NotFound(MSG_NOT_SHARED)
    study.shared_with.remove(group)
    logger.info("study %s unshared from group %s by user %s", study.pk, group.pk, by.pk)


def study_groups(*, study: Study) -> list[dict[str, Any]]:
    return [{"id": g.pk, "name": g.name} for g in study.shared_with.order_by("name")]
