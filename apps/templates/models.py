from django.db import models

from apps.projects.models import Project


class Template(models.Model):
    """A named message (`welcome`, `login_code`) whose content lives in immutable versions."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="templates")
    key = models.SlugField(max_length=100)
    # A send whose data lacks a variable the version requires is refused (422 missing_variables);
    # false renders missing variables as empty text instead (PUT /templates/{key} sets it).
    strict_variables = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="template_unique_key")]

    def __str__(self) -> str:
        return self.key


class TemplateVersion(models.Model):
    """One immutable revision of a template in one locale; notifications keep the version they used.

    `channels` maps a channel name to its parts, e.g. {"email": {"subject": ..., "text": ..., "html": ...}}.
    """

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    locale = models.CharField(max_length=16)
    channels = models.JSONField()
    # Per channel, the top-level data names its parts require (apps/templates/variables.py),
    # extracted when the version is saved so a send checks its data without parsing templates.
    variables = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["template", "version"], name="template_version_unique")]
        indexes = [models.Index(fields=["template", "locale", "-version"], name="template_version_current")]

    def __str__(self) -> str:
        return f"{self.template.key} v{self.version} ({self.locale})"
