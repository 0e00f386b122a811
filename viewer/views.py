"""The clinician pages: login, study list and study view. The pages are templates; the data
comes from the JSON API under ``/viewer/api/`` through the JavaScript in ``static/viewer/``."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from dicom import selectors
from dicom.errors import NotFound


class LoginView(auth_views.LoginView):
    """Email + password (the user model's USERNAME_FIELD is the email)."""

    template_name = "viewer/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    next_page = "viewer:login"


MODALITIES = [
    "CT",
    "MR",
    "CR",
    "DX",
    "MG",
    "US",
    "NM",
    "PT",
    "XA",
    "RF",
    "OT",
    "SC",
    "SM",
    "SEG",
    "RTDOSE",
    "RTSTRUCT",
    "RTPLAN",
]


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    return render(request, "viewer/study_list.html", {"modalities": MODALITIES})


@login_required
def study_view(request: HttpRequest, study_id: int) -> HttpResponse:
    try:
        study = selectors.study_get(user=request.user, pk=study_id)
    except NotFound:
        raise Http404("Study not found.") from None
    return render(request, "viewer/study.html", {"study": study})
