from django.urls import path

from apps.core import converters  # noqa: F401  (registers <external_id:>)
from apps.erasure.api.views import RecipientDetailApi

urlpatterns = [
    path("users/<external_id:external_id>", RecipientDetailApi.as_view(), name="user-detail"),
]
