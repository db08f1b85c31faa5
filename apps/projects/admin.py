from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from apps.projects.models import ApiKey, Project
from apps.projects.policy import critical_categories_clean, frequency_caps_clean


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("name", "prefix", "created_at", "revoked_at")
    readonly_fields = ("name", "prefix", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # keys are created with `manage.py create_api_key`, which shows the key once


class ProjectForm(forms.ModelForm):
    """The same rules for the policy fields as the API's (apps/projects/policy.py)."""

    class Meta:
        model = Project
        fields = ("name", "default_locale", "webhook_url", "status_webhook_url", "api_rate_limit",
                  "critical_categories", "frequency_caps")
        help_texts = {
            "critical_categories": 'A JSON list, e.g. ["security", "billing"]: preferences cannot turn these off.',
            "frequency_caps": 'A JSON list, e.g. [{"category": "marketing", "limit": 3, "window": "1d", '
                              '"over_cap": "defer"}]; "*" caps all categories.',
        }

    def clean_critical_categories(self):
        try:
            return critical_categories_clean(self.cleaned_data["critical_categories"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    def clean_frequency_caps(self):
        try:
            return frequency_caps_clean(self.cleaned_data["frequency_caps"])
        except ValueError as exc:
            raise ValidationError(str(exc.args[0])) from exc


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = ("name", "default_locale", "webhook_url", "api_rate_limit", "created_at")
    search_fields = ("name",)
    inlines = [ApiKeyInline]
