"""A fake of Twilio's Programmable Messaging REST API, for the real ``twilio`` SDK.

It serves ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` the way
api.twilio.com does: HTTP basic auth with the account SID and auth token
(401, error 20003, when wrong), form-encoded parameters, a 201 JSON Message
resource in status ``queued``, and errors in Twilio's JSON shape
``{"code", "message", "more_info", "status"}`` which the SDK turns into
``TwilioRestException``. Point a client at it with
``client.api.base_url = fake.base_url``.

``send_status_callback`` plays Twilio's side of status callbacks: a form POST
signed with ``X-Twilio-Signature`` (HMAC-SHA1 of URL and sorted parameters).
"""

from __future__ import annotations

import base64
import re
import secrets
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

import requests
from twilio.request_validator import RequestValidator

from tests.fakes.loopback import FakeHttpHandler, LoopbackHttpServer

API_VERSION = "2010-04-01"
_MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")


def _error(http_status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's REST error body."""
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": http_status}


def send_status_callback(
    url: str, message_sid: str, status: str, auth_token: str, *, signature: str | None = None, **fields: str
) -> int:
    """POST a message status callback to ``url`` as Twilio would; return the HTTP status code.

    Sends MessageSid/SmsSid, MessageStatus/SmsStatus and ApiVersion, plus ``fields``
    (Twilio also sends AccountSid, From, To, and ErrorCode for failed/undelivered),
    signed for ``auth_token`` unless ``signature`` overrides X-Twilio-Signature.
    """
    params = {"MessageSid": message_sid, "SmsSid": message_sid, "MessageStatus": status, "SmsStatus": status}
    params.update(ApiVersion=API_VERSION, **fields)
    if signature is None:
        signature = RequestValidator(auth_token).compute_signature(url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10).status_code


class _Handler(FakeHttpHandler):
    fake: FakeTwilioServer

    def answer_post(self, raw: bytes) -> None:
        body = raw.decode()
        match = _MESSAGES_PATH.match(self.path)
        if not self.fake._authorized(self.headers.get("Authorization")):
            self.reply_json(401, _error(401, 20003, "Authenticate"), {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        elif match is None or match["account"] != self.fake.account_sid:
            self.reply_json(404, _error(404, 20404, f"The requested resource {self.path} was not found"))
        else:
            form = {key: values[0] for key, values in parse_qs(body).items()}
            self.reply_json(*self.fake._create_message(form))


class FakeTwilioServer(LoopbackHttpServer):
    """Twilio Messages API on 127.0.0.1 and a free port, recording accepted messages.

    Use as a context manager, or call ``start()`` and ``stop()`` (a restart keeps the port). Thread-safe.
    """

    thread_name = "fake-twilio"
    handler = _Handler

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self._rejected_numbers: dict[str, tuple[int, dict[str, Any]]] = {}
        self._receipt_before_reply: str | None = None
        self.callback_answers: list[int] = []
        super().__init__()

    @property
    def messages(self) -> list[dict[str, str]]:
        """Accepted messages, oldest first: the form parameters (To, From, Body,
        StatusCallback, ...) plus ``sid``."""
        return [dict(m) for m in self.recorded]

    def _scripts_clear(self) -> None:
        self._rejected_numbers.clear()
        self._receipt_before_reply = None
        self.callback_answers.clear()

    # -- scripted failures -------------------------------------------------

    def fail_next(self, count: int, http_status: int, twilio_code: int, message: str) -> None:
        """Answer the next ``count`` create-message requests with this error.

        E.g. ``fail_next(1, 429, 20429, "Too Many Requests")`` or
        ``fail_next(2, 503, 20503, "Service Unavailable")``. Calls queue up.
        """
        self._script_next(count, (http_status, _error(http_status, twilio_code, message)))

    def reject_number(self, to: str, http_status: int = 400, twilio_code: int = 21211, message: str | None = None) -> None:
        """Always fail messages to ``to``; by default as an invalid 'To' number (21211)."""
        text = message or f"The 'To' number {to} is not a valid phone number."
        with self._lock:
            self._rejected_numbers[to] = (http_status, _error(http_status, twilio_code, text))

    # -- Twilio's side of status callbacks -----------------------------------

    def send_status_callback(self, message_sid: str, status: str, *, signature: str | None = None, **fields: str) -> int:
        """Send Twilio's status callback for an accepted message to its StatusCallback URL.

        E.g. ``send_status_callback(sid, "undelivered", ErrorCode="30003")``.
        """
        message = next((m for m in self.messages if m["sid"] == message_sid), None)
        if message is None or "StatusCallback" not in message:
            raise LookupError(f"no accepted message {message_sid} with a StatusCallback")
        fields = {"AccountSid": self.account_sid, "From": message.get("From", ""), "To": message["To"], **fields}
        return send_status_callback(
            message["StatusCallback"], message_sid, status, self.auth_token, signature=signature, **fields
        )

    def receipt_before_reply(self, status: str) -> None:
        """For the next accepted message, send its status callback before answering the create
        request, as Twilio can when our side is slow to record the send. The callback's HTTP
        status goes to ``callback_answers``."""
        with self._lock:
            self._receipt_before_reply = status

    # -- request handling (server threads) -------------------------------------

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header is not None and secrets.compare_digest(header, f"Basic {expected}")

    def _create_message(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        failure = self._take_attempt()
        if failure is not None:
            return failure
        with self._lock:
            if form.get("To") in self._rejected_numbers:
                return self._rejected_numbers[form["To"]]
        if not form.get("To"):
            return 400, _error(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, _error(400, 21603, "A 'From' phone number is required.")
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return 400, _error(400, 21602, "Message body is required.")
        sid = "SM" + secrets.token_hex(16)
        self._record({**form, "sid": sid})
        with self._lock:
            receipt_status, self._receipt_before_reply = self._receipt_before_reply, None
        if receipt_status and form.get("StatusCallback"):
            self.callback_answers.append(self.send_status_callback(sid, receipt_status))
        return 201, self._resource(sid, form)

    def _resource(self, sid: str, form: dict[str, str]) -> dict[str, Any]:
        """The Message resource api.twilio.com returns on creation."""
        now = formatdate(usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }


__all__ = ["FakeTwilioServer", "send_status_callback"]
