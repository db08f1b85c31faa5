"""Examples of the project operations' bodies, for the OpenAPI schema."""

from apps.core.egress import ADDRESS_NOT_ALLOWED_MESSAGE
from apps.core.examples import error_example, request_example, response_example

_PROJECT = {"name": "my-shop", "default_locale": "en", "webhook_url": "https://shop.example/hooks/notifier",
            "webhook_secret_previous_until": None,
            "status_webhook_url": "https://shop.example/hooks/notifier-status", "api_rate_limit": "100/s",
            "critical_categories": ["security", "billing"], "frequency_caps": [
                {"category": "marketing", "limit": 3, "window": 86400, "over_cap": "defer"},
                {"category": "*", "limit": 20, "window": 3600, "over_cap": "skip"}]}

PROJECT_GET = [response_example("The key's project (the webhook secret is never shown)", _PROJECT)]
PROJECT_PATCH = [
    request_example("Where the webhook channel posts, and its signing secret", {
        "webhook_url": "https://shop.example/hooks/notifier", "webhook_secret": "whsec-change-me-to-something-long"}),
    request_example("The delivery policy: critical categories and frequency caps", {
        "critical_categories": ["security", "billing"], "frequency_caps": [
            {"category": "marketing", "limit": 3, "window": "1d", "over_cap": "defer"},
            {"category": "*", "limit": 20, "window": 3600, "over_cap": "skip"}]}),
    response_example("Updated", _PROJECT),
    error_example(400, "invalid", "The request has invalid fields.", {"webhook_url": [ADDRESS_NOT_ALLOWED_MESSAGE]}),
]
