"""Examples of the workflow operations' bodies, for the OpenAPI schema."""

from apps.core.examples import error_example, request_example, response_example

_FALLBACK = {"template": "login-code", "steps": [{"channel": "push"}, {"channel": "sms", "if": "not_delivered"}]}
_ESCALATION = {"template": "new-comment",
               "steps": [{"channel": "in_app"}, {"wait": "10m"}, {"channel": "email", "if": "unread"}]}
_DIGEST = {"template": "comments-digest", "steps": [{"channel": "email"}],
           "digest": {"window": "10m", "key": "thread_id", "max": 50}}
_SCHEDULED = {"template": "daily-summary", "steps": [{"channel": "email"}], "digest": {"schedule": {"at": "09:00"}}}

WORKFLOW_PUT = [
    request_example("Fallback: SMS only if the push did not reach the phone", _FALLBACK),
    request_example("Escalation: email 10 minutes later if the in-app message is unread", _ESCALATION),
    request_example("Digest: comments on one thread within 10 minutes, as one email", _DIGEST),
    request_example("Scheduled digest: daily at 09:00 in the user's timezone", _SCHEDULED),
    response_example("A new version", {
        "key": "new-comment", "version": 2, "template": "new-comment",
        "steps": [{"channel": "in_app"}, {"wait": 600}, {"channel": "email", "if": "unread"}], "digest": None,
        "created_at": "2025-01-01T11:50:00.000000Z"}, status=201),
    error_example(422, "invalid_workflow", "The workflow has invalid fields.",
                  {"steps[1].if": '"unread" needs an in_app step before it.'}),
]
WORKFLOW_GET = [
    response_example("The newest version", {
        "key": "login-fallback", "version": 1, "template": "login-code",
        "steps": [{"channel": "push"}, {"channel": "sms", "if": "not_delivered"}], "digest": None,
        "created_at": "2025-01-01T11:50:00.000000Z"}),
    error_example(404, "not_found", "No workflow with key 'login-fallback'."),
]
