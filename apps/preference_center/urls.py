from django.urls import path

from apps.core import converters  # noqa: F401  (registers <external_id:>)
from apps.preference_center.api import PreferencesLinkApi

urlpatterns = [
    path("users/<external_id:external_id>/preferences-link", PreferencesLinkApi.as_view(),
         name="user-preferences-link"),
]
