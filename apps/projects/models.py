from django.db import models


class Project(models.Model):
    """A tenant: a product backend with its own users, templates, notifications and API keys."""

    name = models.CharField(max_length=200, unique=True)
    default_locale = models.CharField(max_length=16, default="en")
    webhook_url = models.URLField(blank=True, max_length=1000)
    webhook_secret = models.CharField(blank=True, max_length=200)
    status_webhook_url = models.URLField(blank=True, max_length=1000)
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
