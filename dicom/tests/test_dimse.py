"""The DICOM SCP with dcmtk as the real client: echoscu, storescu of the whole corpus,
findscu at study and series level; the management command started as a subprocess
answers C-ECHO and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.data import get_testdata_file

from developers.models import AuditEvent
from dicom.dimse.scp import ScpConfig, allowed_parse, scp_start
from dicom.models import Instance

pytestmark = pytest.mark.skipif(
    shutil.which("storescu") is None, reason="dcmtk is not installed (apt-get install dcmtk)"
)
AE_TITLE = "LIGHTBOXTEST"
CT_SMALL = Path(get_testdata_file("CT_small.dcm"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def scp(transactional_db, owner):
    """The SCP in this process (threads), on the test database; modality MODALITY1 acts
    as the owner, every other AE title is rejected."""
    port = free_port()
    config = ScpConfig(ae_title=AE_TITLE, allowed=allowed_parse("MODALITY1=owner@example.com"))
    server = scp_start(host="127.0.0.1", port=port, config=config)
    yield port
    server.shutdown()


def dcmtk(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def test_allowed_ae_titles_are_parsed_from_the_setting():
    assert allowed_parse("MOD1=a@x.org, *=b@x.org") == {"MOD1": "a@x.org", "*": "b@x.org"}


def test_echoscu_is_answered(scp):
    result = dcmtk("echoscu", "-aet", "MODALITY1", "-aec", AE_TITLE, "127.0.0.1", str(scp))
    assert result.returncode == 0, result.stderr


def test_an_unknown_calling_ae_title_is_rejected(scp):
    result = dcmtk("echoscu", "-aet", "STRANGER", "-aec", AE_TITLE, "127.0.0.1", str(scp))
    assert result.returncode != 0


def test_storescu_stores_a_file_visible_over_dicomweb_and_the_viewer_api(scp, owner_client):
    result = dcmtk(
        "storescu", "-aet", "MODALITY1", "-aec", AE_TITLE, "127.0.0.1", str(scp), str(CT_SMALL)
    )
    assert result.returncode == 0, result.stderr
    instance = Instance.objects.get()
    assert instance.source == "dimse" and instance.series.study.owner.email == "owner@example.com"
    study_uid = instance.series.study.study_instance_uid
    assert owner_client.get(f"/dicomweb/studies?StudyInstanceUID={study_uid}").status_code == 200
    assert study_uid in owner_client.get("/viewer/api/studies/").content.decode()
    again = dcmtk(
        "storescu", "-aet", "MODALITY1", "-aec", AE_TITLE, "127.0.0.1", str(scp), str(CT_SMALL)
    )
    assert again.returncode == 0 and Instance.objects.count() == 1  # duplicate = success
    stores = AuditEvent.objects.filter(action="store", instance_id=instance.pk)
    assert [(e.protocol, e.user.email) for e in stores] == [("dimse", "owner@example.com")]


# storescu proposes uncompressed syntaxes unless told otherwise: one run per option.
PROPOSE = {
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.1.99": "-xd",
}


@pytest.mark.corpus
def test_storescu_of_the_whole_corpus_and_findscu_at_study_and_series_level(scp, corpus):
    from conftest import corpus_rows

    groups: dict[str, list[str]] = {}
    for row in corpus_rows():
        option = PROPOSE.get(row["transfer_syntax_uid"], "-x=")
        groups.setdefault(option, []).append(str(corpus / row["file"]))
    for option, files in groups.items():
        # -nh: go on after a refused file (the corpus has broken samples on purpose).
        dcmtk(
            "storescu",
            "-aet",
            "MODALITY1",
            "-aec",
            AE_TITLE,
            "-R",
            "-nh",
            option,
            "127.0.0.1",
            str(scp),
            *files,
            timeout=300,
        )
    assert Instance.objects.count() >= 35
    ds = pydicom.dcmread(CT_SMALL)
    study = _find(
        scp,
        "STUDY",
        f"StudyInstanceUID={ds.StudyInstanceUID}",
        "NumberOfStudyRelatedInstances",
        "PatientID",
    )
    assert ds.StudyInstanceUID in study and "NumberOfStudyRelatedInstances" in study
    series = _find(
        scp, "SERIES", f"StudyInstanceUID={ds.StudyInstanceUID}", "Modality=CT", "SeriesInstanceUID"
    )
    assert ds.SeriesInstanceUID in series
    wildcard = _find(scp, "STUDY", "PatientName=*", "StudyInstanceUID")
    assert wildcard.count("StudyInstanceUID") >= 10
    patient = _find(scp, "PATIENT", f"PatientID={ds.PatientID}", "PatientName", root="-P")
    assert "NumberOfPatientRelatedStudies" in patient or ds.PatientID in patient
    images = _find(
        scp,
        "IMAGE",
        f"StudyInstanceUID={ds.StudyInstanceUID}",
        f"SeriesInstanceUID={ds.SeriesInstanceUID}",
        "SOPInstanceUID",
    )
    assert ds.SOPInstanceUID in images


def _find(port: int, level: str, *keys: str, root: str = "-S") -> str:
    args = [
        "findscu",
        "-v",
        root,
        "-aet",
        "MODALITY1",
        "-aec",
        AE_TITLE,
        "-k",
        f"QueryRetrieveLevel={level}",
    ]
    for key in keys:
        args += ["-k", key]
    result = dcmtk(*args, "127.0.0.1", str(port))
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_the_management_command_serves_and_stops_on_sigterm(tmp_path):
    db = tmp_path / "scp.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "LIGHTBOX_VAR_DIR": str(tmp_path),
        "DICOM_SCP_ALLOWED": "*=archive@example.com",
        "DICOM_SCP_AE_TITLE": AE_TITLE,
    }
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
    migrate = subprocess.run(
        [*manage, "migrate", "--noinput"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    port = free_port()
    proc = subprocess.Popen(
        [*manage, "dicom_scp", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_port(port)
        echo = dcmtk("echoscu", "-aet", "ANY", "-aec", AE_TITLE, "127.0.0.1", str(port))
        assert echo.returncode == 0, echo.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
        assert "DICOM SCP stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()


def _wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the SCP did not listen on {port}")
