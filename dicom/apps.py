from django.apps import AppConfig


class DicomConfig(AppConfig):
    name = "dicom"
    verbose_name = "DICOM archive"

    def ready(self) -> None:
        import pydicom

        # Set once at start-up: keep reading files with slightly invalid values, and
        # never write invalid ones back.
        pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
        pydicom.config.convert_wrong_length_to_UN = True
