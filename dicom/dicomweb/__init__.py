"""DICOMweb (PS3.18): STOW-RS, QIDO-RS and WADO-RS under ``/dicomweb/``."""
