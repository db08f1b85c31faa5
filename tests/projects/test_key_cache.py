"""The API key read once per process and trusted for NOTIFIER_API_KEY_CACHE_SECONDS: a revocation
made elsewhere is refused within that bound, one made in this process at once."""

import time

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.projects.models import ApiKey
from apps.projects.services import api_keys_revoke

pytestmark = pytest.mark.django_db


def _list(api):
    return api.get("/api/v1/notifications")


def test_a_key_read_once_costs_no_query_on_the_next_requests(api):
    assert _list(api).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _list(api).status_code == 200
    assert not [q for q in queries.captured_queries if "projects_apikey" in q["sql"]]


def test_a_key_revoked_by_another_process_is_refused_within_the_documented_bound(api, api_key):
    assert _list(api).status_code == 200  # read and remembered
    # What another process's revocation leaves here: the row changed, no signal in this process.
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    revoked_at = time.monotonic()
    bound = settings.NOTIFIER_API_KEY_CACHE_SECONDS
    assert bound <= 10
    while (status := _list(api).status_code) == 200 and time.monotonic() - revoked_at < bound + 2:
        time.sleep(0.2)
    assert status == 401
    assert time.monotonic() - revoked_at <= bound + 0.5


def test_a_key_revoked_in_this_process_is_refused_at_once(api, api_key):
    assert _list(api).status_code == 200
    api_keys_revoke(api_key_ids=[api_key.pk])
    assert _list(api).status_code == 401


def test_a_project_edited_in_this_process_is_seen_at_once(api, project, redis_for_run):
    assert _list(api).status_code == 200
    project.api_rate_limit = "1/d"
    project.save(update_fields=["api_rate_limit"])
    assert _list(api).status_code == 200
    assert _list(api).status_code == 429  # the new limit, not the remembered project's
