from django.urls import path

from apps.channels.api.views import TwilioStatusCallbackApi

urlpatterns = [
    path("providers/twilio/status", TwilioStatusCallbackApi.as_view(), name="twilio-status-callback"),
]
