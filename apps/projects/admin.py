from django.contrib import admin

from apps.projects.models import ApiKey, Project


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("name", "prefix", "created_at", "revoked_at")
    readonly_fields = ("name", "prefix", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # keys are created with `manage.py create_api_key`, which shows the key once


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "default_locale", "webhook_url", "api_rate_limit", "created_at")
    search_fields = ("name",)
    exclude = ("webhook_secret",)
    inlines = [ApiKeyInline]
