from django.contrib import admin

from apps.core.console import ReadOnlyAdmin
from apps.core.models import OperatorAuditEntry

# The console's name in every page's header and title (Django's defaults say "Django administration").
admin.site.site_header = "Notifier"
admin.site.site_title = "Notifier"
admin.site.index_title = "Console"


@admin.register(OperatorAuditEntry)
class OperatorAuditEntryAdmin(ReadOnlyAdmin):
    """What operators did, read-only: the record cannot be edited, added to or pruned by hand."""

    list_display = ("created_at", "actor_label", "action", "target", "count")
    list_filter = ("action", "target", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=actor_label", "action")
    readonly_fields = ("created_at", "actor", "actor_label", "action", "target", "count", "details")
    list_select_related = ("actor",)
