from django.contrib import admin

from apps.templates.models import Template, TemplateVersion


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("version", "locale", "channels", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # versions are immutable; new ones come through the API


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "project", "created_at")
    list_filter = ("project",)
    search_fields = ("key",)
    inlines = [TemplateVersionInline]
