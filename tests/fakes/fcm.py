"""A fake of Firebase Cloud Messaging's HTTP v1 API and of Google's OAuth2 token endpoint.

It serves what ``firebase_admin.messaging`` calls with service-account credentials:

* ``POST /token``: the JWT-bearer grant. The assertion must be signed by a key
  that ``write_service_account`` generated (400 ``invalid_grant`` otherwise);
  the answer is a Bearer access token valid for an hour.
* ``POST /v1/projects/{project_id}/messages:send``: requires one of those
  tokens (401 UNAUTHENTICATED otherwise), records the ``message`` and answers
  ``{"name": "projects/{project_id}/messages/<id>"}``. With
  ``"validate_only": true`` it answers like FCM's dry run and records nothing.

Errors use FCM v1's shape, ``{"error": {"code", "message", "status",
"details": [{"@type": ".../google.firebase.fcm.v1.FcmError", "errorCode"}]}}``,
which firebase-admin maps to ``UnregisteredError``, ``QuotaExceededError``...
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from tests.fakes.loopback import FakeHttpHandler, LoopbackHttpServer

_JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth puts this audience in service-account assertions whatever the token_uri.
_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def fcm_error(http_status: int, status_name: str, message: str, fcm_error_code: str | None) -> dict[str, Any]:
    """FCM v1's error body; ``fcm_error_code`` None leaves out the FcmError detail."""
    error: dict[str, Any] = {"code": http_status, "message": message, "status": status_name}
    if fcm_error_code is not None:
        error["details"] = [{"@type": _FCM_ERROR_TYPE, "errorCode": fcm_error_code}]
    return {"error": error}


_Reply = tuple[int, dict[str, Any], dict[str, str]]  # HTTP status, JSON body, extra headers

_UNREGISTERED: _Reply = (404, fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"), {})
_BAD_CREDENTIALS = (
    "Request had invalid authentication credentials. "
    "Expected OAuth 2 access token, login cookie or other valid authentication credential."
)
_UNAUTHENTICATED: _Reply = (401, fcm_error(401, "UNAUTHENTICATED", _BAD_CREDENTIALS, None), {"WWW-Authenticate": "Bearer"})


class _Handler(FakeHttpHandler):
    fake: FakeFcmServer

    def answer_post(self, body: bytes) -> None:
        raw = body.decode()
        match = _SEND_PATH.match(self.path)
        if self.path == "/token":
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            self._reply(*self.fake._issue_token(form))
        elif match is not None:
            body = json.loads(raw or "{}")
            self._reply(*self.fake._send(match["project"], self.headers.get("Authorization"), body))
        else:
            self._reply(404, fcm_error(404, "NOT_FOUND", f"{self.path} not found", None))

    def _reply(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.reply_json(status, payload, headers, content_type="application/json; charset=UTF-8")


class FakeFcmServer(LoopbackHttpServer):
    """FCM v1 and its token endpoint on 127.0.0.1 and a free port, recording sent messages.

    Use as a context manager, or call ``start()`` and ``stop()`` (a restart keeps the port). Thread-safe.
    """

    thread_name = "fake-fcm"
    handler = _Handler

    def __init__(self, project_id: str = "notifier-test") -> None:
        self.project_id = project_id
        self._public_keys: dict[str, bytes] = {}  # private_key_id -> PEM public key
        self._access_tokens: set[str] = set()
        self._unregistered: set[str] = set()
        super().__init__()

    @property
    def fcm_url_template(self) -> str:
        """This fake's counterpart of ``messaging._MessagingService.FCM_URL`` ({0}: project id)."""
        return self.base_url + "/v1/projects/{0}/messages:send"

    def write_service_account(self, path: str | Path) -> dict[str, str]:
        """Write a service-account key file for ``self.project_id`` whose token_uri is this fake.

        The RSA key is freshly generated; only keys written here are accepted by
        ``/token``. Returns the JSON written.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        email = f"firebase-adminsdk@{self.project_id}.iam.gserviceaccount.com"
        info = {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": key_id,
            "private_key": key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.base_url + "/token",
        }
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        with self._lock:
            self._public_keys[key_id] = public_pem
        Path(path).write_text(json.dumps(info, indent=2))
        return info

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``message`` objects of accepted sends, oldest first."""
        return self.recorded

    def _scripts_clear(self) -> None:
        self._unregistered.clear()

    # -- scripted failures -------------------------------------------------

    def fail_next(
        self,
        count: int,
        http_status: int,
        fcm_error_code: str | None,
        status_name: str,
        message: str,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``count`` sends with this error (calls queue up).

        E.g. ``fail_next(1, 429, "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "Quota exceeded.", retry_after=2)``
        or ``fail_next(5, 503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")``.
        ``retry_after`` (seconds) is sent as the ``Retry-After`` header.
        """
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self._script_next(count, (http_status, fcm_error(http_status, status_name, message, fcm_error_code), headers))

    def unregister_token(self, token: str) -> None:
        """Make every send to this registration token (or installation id) fail with UNREGISTERED."""
        with self._lock:
            self._unregistered.add(token)

    # -- request handling (server threads) -----------------------------------

    def _issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != _JWT_GRANT_TYPE:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        with self._lock:
            certs = dict(self._public_keys)
        try:
            jwt.decode(form.get("assertion", ""), certs=certs, audience=_TOKEN_AUDIENCE)
        except (ValueError, KeyError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _send(self, project: str, authorization: str | None, body: dict[str, Any]) -> _Reply:
        with self._lock:
            scheme, _, token = (authorization or "").partition(" ")
            authenticated = scheme == "Bearer" and token in self._access_tokens
        if not authenticated:
            return _UNAUTHENTICATED
        failure = self._take_attempt()
        if failure is not None:
            return failure
        if project != self.project_id:
            text = f"Permission 'cloudmessaging.messages.create' denied on project {project} (or it may not exist)."
            return 403, fcm_error(403, "PERMISSION_DENIED", text, None), {}
        message = body.get("message")
        targets = [key for key in ("token", "fid", "topic", "condition") if key in (message or {})]
        if not isinstance(message, dict) or len(targets) != 1:
            return 400, fcm_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT"), {}
        device = message.get("token") or message.get("fid")
        with self._lock:
            unregistered = device in self._unregistered
        if unregistered:
            return _UNREGISTERED
        if body.get("validate_only"):
            return 200, {"name": f"projects/{project}/messages/fake_message_id"}, {}
        self._record(message)
        message_id = f"0:{secrets.randbelow(10**16)}%{secrets.token_hex(8)}"
        return 200, {"name": f"projects/{project}/messages/{message_id}"}, {}


__all__ = ["FakeFcmServer", "fcm_error"]
