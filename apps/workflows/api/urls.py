from django.urls import path

from apps.core import converters  # noqa: F401  (registers <template_key:>, the same shape of key)
from apps.workflows.api.views import WorkflowDetailApi

urlpatterns = [
    path("workflows/<template_key:key>", WorkflowDetailApi.as_view(), name="workflow-detail"),
]
