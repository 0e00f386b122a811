"""DICOM networking (PS3.4/PS3.7): the pynetdicom C-ECHO/C-STORE/C-FIND SCP."""
