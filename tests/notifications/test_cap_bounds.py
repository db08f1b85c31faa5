"""Frequency caps a key holder sets to hurt the service: the bounds the API enforces, and a
bounded amount of work per request under a user's row lock, whatever the user's history."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.notifications.models import Notification
from tests.templates.factories import EMAIL_PARTS, TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

MONTH = timedelta(days=31)
# The attack as it was run (a bulk of 1,000 for one user, all deferred or skipped), with the
# largest limit the API allows.
BULK_ITEMS = 1000
LIMIT = 1000


@pytest.mark.parametrize("cap, field", [
    ({"category": "*", "limit": 10_000, "window": "31d", "over_cap": "defer"}, "limit"),
    ({"category": "*", "limit": 10, "window": "32d", "over_cap": "defer"}, "window"),
])
def test_a_cap_beyond_the_bounds_is_a_400_naming_the_field(api, cap, field):
    response = api.patch("/api/v1/project", {"frequency_caps": [cap]}, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["frequency_caps"]["0"]


class RowsRead:
    """Counts the rows the application's queries return from the notifications table."""

    def __init__(self):
        self.rows = 0
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        self.queries += 1
        if sql.lstrip().upper().startswith("SELECT") and 'FROM "notifications_notification"' in sql:
            self.rows += max(context["cursor"].rowcount, 0)
        return result


def test_a_bulk_for_a_user_filled_far_ahead_reads_a_bounded_history_under_the_lock(api, project):
    """The key sets the largest cap the API allows, fills one user a month back and ten months
    ahead (each month holding exactly the limit), then sends a bulk for that user. The request
    reads a few months of that user's history, not all of it, and skips what it cannot place."""
    assert api.patch("/api/v1/project", {"frequency_caps": [
        {"category": "*", "limit": LIMIT, "window": "31d", "over_cap": "defer"}]}, format="json").status_code == 200
    version = TemplateVersionFactory(template__project=project, template__key="promo",
                                     channels={"email": dict(EMAIL_PARTS)})
    ada = RecipientFactory(project=project, external_id="ada")
    now = timezone.now()
    spacing = MONTH / LIMIT + timedelta(seconds=1)  # never more than the limit in a window
    history = 11 * LIMIT
    Notification.objects.bulk_create(
        Notification(project=project, recipient=ada, to="ada", template=version.template, template_version=version,
                     category="promo", cap_counted_at=now - MONTH + n * spacing)
        for n in range(history)
    )
    items = [{"to": "ada", "template": "promo", "category": "promo"} for _ in range(BULK_ITEMS)]

    reads = RowsRead()
    with connection.execute_wrapper(reads):
        response = api.post("/api/v1/notifications/bulk", {"notifications": items}, format="json")

    assert response.status_code == 200, response.content
    # A window before the due time to a window past the deferral horizon (two windows): four
    # windows of at most the limit each, of 11 held.
    assert reads.rows <= 4 * LIMIT + 4, reads.rows
    assert reads.queries <= 30, reads.queries
    results = response.json()["results"]
    assert {d["status"] for r in results for d in r["deliveries"]} == {"skipped"}
    assert "no room within" in results[0]["deliveries"][0]["skip_reason"]
