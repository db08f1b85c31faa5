"""Endpoints the providers call about deliveries: authenticated by their signatures, not by our API keys.

They live with the delivery state they change; the channel backends only check signatures."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.channels.backends.twilio import TwilioSmsBackend, public_url
from apps.channels.registry import backend_find
from apps.core.examples import error_example, request_example
from apps.core.exceptions import ApplicationError, NotFound
from apps.core.schema import ERROR_RESPONSE_403
from apps.notifications.delivery.receipts import delivery_report_receipt

SIGNATURE_HEADER = "X-Twilio-Signature"
# Twilio's final message statuses; the others (queued, sending, sent, ...) are progress we ignore.
_TWILIO_FINAL_STATUSES = {"delivered": True, "undelivered": False, "failed": False}


class TwilioStatusCallbackSerializer(serializers.Serializer):
    """The fields of Twilio's message status callback that we read (it sends more)."""

    MessageSid = serializers.CharField(max_length=64)
    MessageStatus = serializers.CharField(max_length=32)
    ErrorCode = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")


_EXAMPLES = [
    request_example("Twilio reports a message delivered", {
        "MessageSid": "SM0123456789abcdef0123456789abcdef", "MessageStatus": "delivered", "ErrorCode": ""},
        media_type="application/x-www-form-urlencoded"),
    error_example(403, "invalid_signature", f"Missing or invalid {SIGNATURE_HEADER}."),
]


class TwilioStatusCallbackApi(APIView):
    """`POST /api/v1/providers/twilio/status`: Twilio's status callbacks for the SMS we sent.

    Twilio posts a form and signs it with X-Twilio-Signature (HMAC of the URL it called and the
    form fields, keyed by our auth token); a missing or wrong signature is a 403. `delivered`
    moves the delivery to delivered, `undelivered` and `failed` to undelivered with Twilio's
    ErrorCode; repeats and late callbacks change nothing. Answers 204.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]  # Twilio posts application/x-www-form-urlencoded

    @extend_schema(request={"application/x-www-form-urlencoded": TwilioStatusCallbackSerializer},
                   responses={204: None, 403: ERROR_RESPONSE_403}, auth=[], examples=_EXAMPLES)
    def post(self, request):
        backend = _twilio_backend()
        # Twilio signed the public URL it called, which behind a proxy is not the one this
        # process sees (request.build_absolute_uri() would give the internal host or scheme).
        url = public_url(request.get_full_path())
        if not backend.signature_valid(url=url, params=request.data, signature=request.headers.get(SIGNATURE_HEADER, "")):
            raise ApplicationError("invalid_signature", f"Missing or invalid {SIGNATURE_HEADER}.", status_code=403)
        serializer = TwilioStatusCallbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        delivered = _TWILIO_FINAL_STATUSES.get(fields["MessageStatus"])
        if delivered is not None:
            delivery_report_receipt(
                channel=TwilioSmsBackend.channel, provider_message_id=fields["MessageSid"],
                delivered=delivered, error_code=fields["ErrorCode"],
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _twilio_backend() -> TwilioSmsBackend:
    backend = backend_find(TwilioSmsBackend.channel, TwilioSmsBackend)
    if backend is None:
        raise NotFound("SMS through Twilio is not enabled on this server.")
    return backend
