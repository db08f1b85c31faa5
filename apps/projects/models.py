from django.db import models

from apps.projects.rates import validate_rate


class Project(models.Model):
    """A tenant: a product backend with its own users, templates, notifications and API keys."""

    name = models.CharField(max_length=200, unique=True)
    default_locale = models.CharField(max_length=16, default="en")
    webhook_url = models.URLField(blank=True, max_length=1000)
    webhook_secret = models.CharField(blank=True, max_length=200)
    # While a secret is rotated (services.project_update), the one it replaced still signs too,
    # until `webhook_secret_previous_until`: receivers switch to the new one without a gap.
    webhook_secret_previous = models.CharField(blank=True, max_length=200)
    webhook_secret_previous_until = models.DateTimeField(null=True, blank=True)
    status_webhook_url = models.URLField(blank=True, max_length=1000)
    # Set by the operator (the admin), never through the API: a key holder must not raise its own limit.
    api_rate_limit = models.CharField(
        blank=True, max_length=32, validators=[validate_rate],
        help_text="Requests per API key: N/s, N/m, N/h or N/d, or 'off'. Blank: NOTIFIER_API_RATE_LIMIT.",
    )
    # Categories the users' preferences cannot turn off (security codes, billing): see caps.py and
    # apps/users/preferences.py. A list of category names.
    critical_categories = models.JSONField(default=list, blank=True)
    # At most `limit` notifications per user per `category` ("*": all of them) in `window` seconds;
    # over it a notification is deferred or skipped (`over_cap`). Validated by apps/projects/policy.py.
    frequency_caps = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A server-to-server credential. Only a SHA-256 of the key is kept; the key is shown once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Refreshed by authentication at most once a minute per key (selectors.api_key_touch), not on
    # every request: precise enough to tell a key in use from one to revoke.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.project})"
