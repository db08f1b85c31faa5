from django.urls import path

from apps.core import converters  # noqa: F401  (registers <template_key:>)
from apps.templates.api.views import TemplateDetailApi, TemplatePreviewApi

urlpatterns = [
    path("templates/<template_key:key>", TemplateDetailApi.as_view(), name="template-detail"),
    path("templates/<template_key:key>/preview", TemplatePreviewApi.as_view(), name="template-preview"),
]
