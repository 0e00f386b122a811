from django.contrib import admin

from exams.models import ExamImage


@admin.register(ExamImage)
class ExamImageAdmin(admin.ModelAdmin):
    list_display = ["image_id", "exam_id", "modality", "date_acquisition", "owner"]
    list_filter = ["modality"]
    search_fields = ["image_id", "exam_id", "sop_instance_uid"]
    raw_id_fields = ["owner", "instance"]
