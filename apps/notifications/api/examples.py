"""Examples of the notification and broadcast operations' bodies, for the OpenAPI schema."""

from apps.core.examples import error_example, request_example, response_example

NOTIFICATION_ID = "6f1c2a9e-4b7d-4e3a-9c1f-2d8e5b7a0c41"
EMAIL_DELIVERY_ID = "0b5e8c3d-1f2a-4d6b-8e9c-7a1b2c3d4e5f"
BROADCAST_ID = "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e"

_UNKNOWN_USER = {"code": "unknown_user", "message": "No user with id 'nobody'; create it with PUT /api/v1/users/{id}.",
                 "details": {"to": "nobody"}}
_CREATE = {"to": "ada", "template": "welcome", "data": {"name": "Ada"}}
_CREATED = {"id": NOTIFICATION_ID, "status": "processing",
            "deliveries": [{"id": EMAIL_DELIVERY_ID, "channel": "email", "status": "queued",
                            "skip_reason": "", "hold_reason": ""}]}

NOTIFICATION_CREATE = [
    request_example("One user, every channel the template has", _CREATE),
    request_example("A workflow's run: its steps choose the channels", {
        "to": "ada", "workflow": "new-comment", "data": {"name": "Ada", "thread_id": "t-42"}}),
    request_example("A login code by SMS, ahead of quiet hours", {
        "to": "ada", "template": "login-code", "data": {"code": "482913"}, "channels": ["sms"],
        "category": "security", "priority": "high"}),
    request_example("A marketing notification", {
        "to": "ada", "template": "spring-sale", "data": {"percent": 20}, "channels": ["email", "sms", "push"],
        "category": "marketing"}),
    response_example("Accepted", _CREATED, status=202),
    response_example("Accepted: one queued, one declined, one held by a frequency cap", {
        "id": NOTIFICATION_ID, "status": "processing", "deliveries": [
            {"id": EMAIL_DELIVERY_ID, "channel": "email", "status": "queued", "skip_reason": "", "hold_reason": ""},
            {"id": "c2a9b8c7-d6e5-4f4a-9b3c-2d1e0f9a8b7c", "channel": "sms", "status": "skipped",
             "skip_reason": "the user turned sms off", "hold_reason": ""},
            {"id": "d47b6a59-4837-4261-a5b4-c3d2e1f0a9b8", "channel": "push", "status": "pending", "skip_reason": "",
             "hold_reason": "held by the frequency cap (at most 3 'marketing' notifications per 86400 s)"},
        ]}, status=202, name="Accepted with reasons"),
    error_example(422, _UNKNOWN_USER["code"], _UNKNOWN_USER["message"], _UNKNOWN_USER["details"]),
]

_DETAIL = {
    "id": NOTIFICATION_ID, "status": "sent", "to": "ada", "template": "welcome", "category": "", "priority": "normal",
    "send_at": None, "data": {"name": "Ada"}, "created_at": "2025-01-01T12:00:00.123456Z",
    "deliveries": [{
        "id": EMAIL_DELIVERY_ID, "channel": "email", "status": "sent", "skip_reason": "", "hold_reason": "",
        "attempt_count": 2, "next_attempt_at": None, "sent_at": "2025-01-01T12:00:03.456789Z",
        "provider_message_id": "<0b5e8c3d.notifier@mail.example>", "last_error": None, "cancel_requested_at": None,
        "attempts": [
            {"number": 1, "started_at": "2025-01-01T12:00:00.200000Z", "duration_ms": 31, "outcome": "transient_error",
             "provider": "smtp:mail.example:587", "passed_over": [], "provider_message_id": "", "error_code": "451",
             "error_message": "SMTP 451 4.3.0 try again later"},
            {"number": 2, "started_at": "2025-01-01T12:00:03.400000Z", "duration_ms": 28, "outcome": "sent",
             "provider": "smtp:backup.mail.example:587",
             "passed_over": [{"provider": "smtp:mail.example:587", "error_code": "connection",
                              "error": "Cannot connect to the mail server: [Errno 111] Connection refused"}],
             "provider_message_id": "<0b5e8c3d.notifier@mail.example>", "error_code": "", "error_message": ""},
        ],
    }],
    "workflow": None,
}
_IN_APP_DELIVERY = {
    "id": "7d3e2f1a-0b9c-4d8e-a7f6-5e4d3c2b1a09", "channel": "in_app", "status": "sent", "skip_reason": "",
    "hold_reason": "", "attempt_count": 1, "next_attempt_at": None, "sent_at": "2025-01-01T12:00:00.180000Z",
    "provider_message_id": "inbox:812", "last_error": None, "cancel_requested_at": None, "attempts": [
        {"number": 1, "started_at": "2025-01-01T12:00:00.150000Z", "duration_ms": 4, "outcome": "sent",
         "provider_message_id": "inbox:812", "error_code": "", "error_message": ""}]}
_RUN_STEPS = [
    {"index": 0, "channel": "in_app", "state": "done", "reason": "", "due_at": None,
     "finished_at": "2025-01-01T12:00:00.140000Z", "delivery": _IN_APP_DELIVERY["id"]},
    {"index": 1, "wait": 600, "state": "waiting", "reason": "", "due_at": "2025-01-01T12:10:00.140000Z",
     "finished_at": None, "delivery": None},
    {"index": 2, "channel": "email", "if": "unread", "state": "pending", "reason": "", "due_at": None,
     "finished_at": None, "delivery": None},
]
_RUN_DETAIL = {
    **_DETAIL, "template": "new-comment", "data": {"name": "Ada", "thread_id": "t-42"},
    "deliveries": [_IN_APP_DELIVERY],
    "workflow": {"key": "new-comment", "version": 2, "run": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "state": "active",
                 "due_at": "2025-01-01T12:10:00.140000Z", "notification": NOTIFICATION_ID, "joined": False,
                 "position": None, "event_count": None, "steps": _RUN_STEPS},
}
NOTIFICATION_DETAIL = [
    response_example("Sent on the second attempt", _DETAIL),
    response_example("A workflow's run in its wait: in-app sent, email if still unread at 12:10", _RUN_DETAIL),
    response_example("Escalated: the in-app message stayed unread, so the email went", {
        **_RUN_DETAIL, "deliveries": [_IN_APP_DELIVERY, {**_DETAIL["deliveries"][0], "attempt_count": 1,
                                                         "attempts": _DETAIL["deliveries"][0]["attempts"][1:]}],
        "workflow": {**_RUN_DETAIL["workflow"], "state": "done", "due_at": None, "steps": [
            _RUN_STEPS[0], {**_RUN_STEPS[1], "state": "done", "finished_at": "2025-01-01T12:10:01.020000Z"},
            {**_RUN_STEPS[2], "state": "done", "reason": "unread: the in-app message is unread",
             "finished_at": "2025-01-01T12:10:01.030000Z", "delivery": EMAIL_DELIVERY_ID}]}}),
]
NOTIFICATION_CANCEL = [response_example("Cancelled before it was sent", {
    **_DETAIL, "status": "cancelled", "send_at": "2025-01-02T09:00:00Z",
    "deliveries": [{**_DETAIL["deliveries"][0], "status": "cancelled", "attempt_count": 0, "sent_at": None,
                    "provider_message_id": "", "attempts": []}],
}), response_example("A workflow's run cancelled in its wait: no later step runs", {
    **_RUN_DETAIL, "workflow": {**_RUN_DETAIL["workflow"], "state": "cancelled", "due_at": None, "steps": [
        _RUN_STEPS[0], *({**step, "state": "cancelled", "reason": "the notification was cancelled",
                          "finished_at": "2025-01-01T12:03:00Z"} for step in _RUN_STEPS[1:])]}})]
# One item: drf-spectacular shows it in a page ({next, previous, results: [...]}) itself.
NOTIFICATION_LIST = [response_example("?status=dead&channel=email: notifications whose email is dead", {
    "id": NOTIFICATION_ID, "status": "dead", "to": "ada", "template": "welcome", "category": "", "priority": "normal",
    "created_at": "2025-01-01T12:00:00.123456Z",
    "deliveries": [{"id": EMAIL_DELIVERY_ID, "channel": "email", "status": "dead"}]})]

NOTIFICATION_BULK = [
    request_example("Two notifications, one with an idempotency key", {"notifications": [
        {**_CREATE, "idempotency_key": "signup-ada"}, {"to": "nobody", "template": "welcome"}]}),
    response_example("One accepted, one refused", {"results": [
        _CREATED,
        {"error": _UNKNOWN_USER},
    ]}),
]

_BROADCAST = {
    "id": BROADCAST_ID, "status": "pending", "template": "spring-sale", "workflow": "", "category": "marketing",
    "priority": "low",
    "send_at": None, "audience": {"has_channel": "email"}, "total": None, "created": 0, "skipped": 0, "failed": 0,
    "last_error": "", "created_at": "2025-03-20T08:00:00Z", "started_at": None, "finished_at": None,
}
BROADCAST_CREATE = [
    request_example("Every user with an email address", {
        "template": "spring-sale", "data": {"discount": "20%"}, "channels": ["email"], "category": "marketing",
        "priority": "low", "audience": {"has_channel": "email"}}),
    request_example("A list of users", {"template": "outage", "to": ["ada", "grace", "linus"]}),
    request_example("A workflow to a list of users: each gets a run", {"workflow": "new-comment", "to": ["ada", "grace"],
                                                                       "data": {"name": "everyone"}}),
    response_example("Accepted; the fan-out runs in the background", _BROADCAST, status=202),
]
BROADCAST_DETAIL = [response_example("Completed", {
    **_BROADCAST, "status": "completed", "total": 1200, "created": 1187, "skipped": 13,
    "started_at": "2025-03-20T08:00:01Z", "finished_at": "2025-03-20T08:00:09Z"})]
BROADCAST_CANCEL = [response_example("Cancelled mid-way", {
    **_BROADCAST, "status": "cancelled", "total": 1200, "created": 400, "started_at": "2025-03-20T08:00:01Z",
    "finished_at": "2025-03-20T08:00:04Z"})]
