from django.conf import settings
from django.db import models


class OperatorAuditEntry(models.Model):
    """One operator action: who did what, to how many rows, and when.

    One entry per action (a bulk replay of 500 dead letters is one entry with count 500), whatever
    the console, the command line or a service did it; per-row records, where an app keeps them
    (a delivery's replays), say which rows.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The admin user; null for a command, which records `cli:<OS user>` in actor_label instead.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64, help_text="e.g. dead_letters.replay, api_key.revoke")
    target = models.CharField(max_length=100, help_text="The kind of row acted on, e.g. notifications.delivery.")
    count = models.PositiveIntegerField(help_text="Rows affected.")
    details = models.JSONField(default=dict, blank=True, help_text="Ids, filters, note: what the action needs to be read back.")

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "operator audit entry"
        verbose_name_plural = "operator audit log"

    def __str__(self) -> str:
        return f"{self.action} x {self.count} by {self.actor_label}"
