"""The users' console page, with a delete that erases.

Django's delete would remove the row and its devices but leave the user's data in the delivery
log and skip the audit log; deleting here (one user, or the bulk action) is the erasure that
DELETE /api/v1/users/{id} does. Registered from this app, above the ones holding the data, as
the API's DELETE is (apps/erasure/api).
"""

from django.contrib import admin

from apps.erasure.services import recipient_erase, recipients_erase
from apps.users.admin import RecipientAdmin as UsersRecipientAdmin
from apps.users.models import Recipient


@admin.register(Recipient)
class RecipientAdmin(UsersRecipientAdmin):
    def delete_model(self, request, obj):
        recipient_erase(recipient=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        recipients_erase(recipients=queryset.select_related("project").order_by("pk"), actor=request.user)
