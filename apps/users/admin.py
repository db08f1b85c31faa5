from django.contrib import admin

from apps.users.models import Device, Recipient


class DeviceInline(admin.TabularInline):
    model = Device
    fields = ("platform", "token", "active", "created_at", "last_seen_at")
    readonly_fields = ("created_at", "last_seen_at")
    extra = 0


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ("external_id", "project", "email", "phone", "locale", "timezone", "updated_at")
    list_filter = ("project",)
    search_fields = ("external_id", "email", "phone", "name")
    inlines = [DeviceInline]
