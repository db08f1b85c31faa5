from django.contrib import admin

from apps.inbox.models import InboxMessage


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "recipient", "title", "read_at", "created_at")
    list_filter = ("project",)
    search_fields = ("recipient__external_id", "title")
    raw_id_fields = ("recipient", "delivery")
    readonly_fields = ("project", "recipient", "delivery", "created_at")
