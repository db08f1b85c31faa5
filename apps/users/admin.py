from django.contrib import admin

from apps.core.console import ReadOnlyAdmin
from apps.users.models import Device, Unsubscribe


class DeviceInline(admin.TabularInline):
    model = Device
    fields = ("platform", "token", "active", "created_at", "last_seen_at")
    readonly_fields = ("created_at", "last_seen_at")
    extra = 0


# Registered by apps/erasure/admin.py, whose delete erases the user from every app (this one
# cannot reach the apps above it).
class RecipientAdmin(admin.ModelAdmin):
    list_display = ("external_id", "project", "email", "phone", "locale", "timezone", "updated_at")
    list_filter = ("project",)
    search_fields = ("external_id", "email", "phone", "name")
    inlines = [DeviceInline]


@admin.register(Unsubscribe)
class UnsubscribeAdmin(ReadOnlyAdmin):
    """Read-only: the record of what users asked for is not the operators' to change."""

    list_display = ("created_at", "project", "recipient", "category", "channel", "source")
    list_filter = ("project", "source", "channel")
    search_fields = ("recipient__external_id", "category")
    list_select_related = ("project", "recipient")
