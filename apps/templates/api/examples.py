"""Examples of the template operations' bodies, for the OpenAPI schema."""

from apps.core.examples import error_example, request_example, response_example

_CHANNELS = {
    "email": {"subject": "Hi {{ name }}", "text": "Welcome, {{ name }}!", "html": "<p>Welcome, {{ name }}!</p>"},
    "sms": {"text": "Welcome to the shop, {{ name }}!"},
    "in_app": {"title": "Welcome", "body": "Hello {{ name }}, your account is ready.", "url": "https://shop.example/start"},
}
_VERSION = {"version": 3, "locale": "en", "channels": _CHANNELS,
            "variables": {"email": ["name"], "sms": ["name"], "in_app": ["name"]},
            "created_at": "2025-01-01T11:50:00.000000Z"}

TEMPLATE_PUT = [
    request_example("Email, SMS and in-app parts", {"channels": _CHANNELS, "locale": "en"}),
    request_example("A French version, lenient about missing variables", {
        "locale": "fr", "strict_variables": False,
        "channels": {"email": {"subject": "Bonjour {{ name }}", "text": "{% if code %}Code : {{ code }}{% endif %}"}}}),
    response_example("A new version", _VERSION, status=201),
    error_example(422, "invalid_template", "A template part does not compile.",
                  {"channels.email.subject": "Unclosed tag on line 1: 'if'. Looking for one of: elif, else, endif."}),
]
TEMPLATE_GET = [
    response_example("The newest version in each locale", {
        "key": "welcome", "created_at": "2024-12-01T09:00:00.000000Z",
        "versions": [_VERSION, {**_VERSION, "version": 2, "locale": "fr",
                                "channels": {"email": {"subject": "Bonjour {{ name }}", "text": "Bienvenue !"}}}]}),
    error_example(404, "not_found", "No template with key 'welcome'."),
]
TEMPLATE_PREVIEW = [
    request_example("Render with this data", {"data": {"name": "Ada"}, "locale": "en"}),
    response_example("Every channel, rendered", {"version": 3, "locale": "en", "channels": {
        "email": {"subject": "Hi Ada", "text": "Welcome, Ada!", "html": "<p>Welcome, Ada!</p>"},
        "sms": {"text": "Welcome to the shop, Ada!"},
        "in_app": {"title": "Welcome", "body": "Hello Ada, your account is ready.", "url": "https://shop.example/start"},
    }, "missing_variables": []}),
    request_example("Preview for a Canadian French user", {"locale": "fr-CA", "data": {"code": "123456"}}),
    response_example("Rendered, with what the data lacks", {
        "version": 4, "locale": "fr", "missing_variables": ["name"],
        "channels": {"email": {"subject": "Bonjour ", "text": "Code : 123456"}}}, name="Rendered with missing variables"),
    error_example(422, "template_render_error", "The template cannot be rendered with this data.",
                  {"channels.sms.text": "divisibleby: division by zero"}),
]
