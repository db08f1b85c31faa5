"""Several deliveries of one channel per task: one claim, one write, per-delivery outcomes, and a
fixed number of queries and commits however many deliveries a batch holds."""

from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from apps.notifications.delivery.sending import deliveries_send
from apps.notifications.models import AttemptOutcome, DeliveryStatus
from apps.notifications.outbox.deliveries import PRIORITY_LEVELS, deliveries_publish, delivery_message
from tests.notifications.factories import DeliveryFactory, NotificationFactory
from tests.users.factories import RecipientFactory


def emails(count: int, **notification_fields):
    deliveries = []
    for n in range(count):
        recipient = RecipientFactory(email=f"user{n}@example.com")
        notification = NotificationFactory(recipient=recipient, project=recipient.project, **notification_fields)
        deliveries.append(DeliveryFactory(notification=notification))
    return deliveries


@contextmanager
def counted():
    """The statements run (BEGIN/COMMIT aside) and the commits: each COMMIT, and each statement
    run outside a transaction block (autocommit: a transaction of its own)."""
    with CaptureQueriesContext(connection) as captured:
        counts = {}
        yield counts
    statements, commits, in_block = [], 0, False
    for query in captured.captured_queries:
        # Django logs None for a statement that failed before its text was composed (CI saw it
        # once, cause unknown): still a statement, and named so in the assertions' messages.
        query = {**query, "sql": query["sql"] or "(a statement whose text Django could not log)"}
        sql = query["sql"].strip().upper()
        if sql.startswith("BEGIN"):
            in_block = True
        elif sql.startswith("COMMIT"):
            in_block, commits = False, commits + 1
        else:
            statements.append(query["sql"])
            commits += 0 if in_block else 1
    counts.update(statements=statements, commits=commits)


@pytest.mark.django_db(transaction=True)
def test_a_batch_costs_the_same_queries_and_commits_as_one_delivery(smtp):
    one, many = emails(1), emails(20)

    with counted() as single:
        deliveries_send(delivery_ids=[str(one[0].id)])
    with counted() as batch:
        result = deliveries_send(delivery_ids=[str(d.id) for d in many])

    assert {o.status for o in result.outcomes.values()} == {DeliveryStatus.SENT}
    assert len(result.outcomes) == 20 and len(smtp.messages) == 21
    print(f"\none delivery: {len(single['statements'])} queries, {single['commits']} commits; "
          f"20 deliveries: {len(batch['statements'])} queries, {batch['commits']} commits")
    # Claim (UPDATE … RETURNING, the rows) and record (lock, insert attempts, update): none per delivery.
    assert len(batch["statements"]) == len(single["statements"]) <= 5, (single["statements"], batch["statements"])
    # The happy path is at most 3 commits per delivery even in a batch of one; here, for all 20.
    assert single["commits"] <= 3
    assert batch["commits"] <= 3


@pytest.mark.django_db
def test_one_refused_address_fails_alone_and_one_throttled_is_retried_alone(smtp):
    first, refused, ok = emails(3)
    smtp.fail_next(1)  # the first message of the batch: 451
    smtp.reject_recipient(refused.notification.recipient.email)

    result = deliveries_send(delivery_ids=[str(first.id), str(refused.id), str(ok.id)])

    for delivery in (first, refused, ok):
        delivery.refresh_from_db()
    assert (first.status, refused.status, ok.status) == (DeliveryStatus.RETRYING, DeliveryStatus.FAILED,
                                                         DeliveryStatus.SENT)
    assert refused.last_error_code == "550"
    assert [d.id for d, _ in result.retries] == [first.id]
    assert [m["To"] for m in smtp.messages] == [ok.notification.recipient.email]
    assert [a.outcome for a in ok.attempts.all()] == [AttemptOutcome.SENT]


@pytest.mark.django_db
def test_a_redelivered_batch_sends_nothing_again(smtp):
    batch = [str(d.id) for d in emails(3)]

    deliveries_send(delivery_ids=batch)
    again = deliveries_send(delivery_ids=batch)

    assert again.outcomes == {} and again.unknown == []
    assert len(smtp.messages) == 3


@pytest.mark.django_db
def test_a_batch_naming_no_such_delivery_sends_the_others_and_reports_the_unknown(smtp):
    real = emails(2)
    missing = "8d2c7f0e-0000-4000-8000-000000000000"

    result = deliveries_send(delivery_ids=[str(real[0].id), "not-a-uuid", missing, str(real[1].id)])

    assert sorted(result.unknown) == sorted(["not-a-uuid", missing])
    assert len(result.outcomes) == 2 and len(smtp.messages) == 2


@pytest.mark.django_db(transaction=True)
def test_publishing_groups_a_channels_deliveries_by_priority_into_batches(private_queue, settings):
    settings.NOTIFIER_CHANNELS[private_queue.channel]["BATCH_SIZE"] = 3
    normal = DeliveryFactory.create_batch(7, channel=private_queue.channel)
    high = DeliveryFactory.create_batch(2, channel=private_queue.channel)
    messages = [delivery_message(d, priority="normal") for d in normal]
    messages[3:3] = [delivery_message(d, priority="high") for d in high]

    assert deliveries_publish(messages) == 9

    taken = private_queue.drain()
    # One message per batch (this test queue has no priorities: publishing order), a batch never
    # mixing priorities, so the broker still sends high-priority ones first.
    assert [(sorted(ids) if isinstance(ids, list) else ids, priority) for ids, priority in taken] == [
        (sorted(str(d.id) for d in normal[:3]), PRIORITY_LEVELS["normal"]),
        (sorted(str(d.id) for d in normal[3:6]), PRIORITY_LEVELS["normal"]),
        (str(normal[6].id), PRIORITY_LEVELS["normal"]),
        (sorted(str(d.id) for d in high), PRIORITY_LEVELS["high"]),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_database_error_while_recording_is_retried_and_the_mail_sent_once(smtp):
    batch = emails(2)
    failures = {"left": 2}

    def database_blinks(execute, sql, params, many, context):
        if "FOR UPDATE" in sql and failures["left"]:
            failures["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(database_blinks):
        result = deliveries_send(delivery_ids=[str(d.id) for d in batch])

    assert failures["left"] == 0
    assert {o.status for o in result.outcomes.values()} == {DeliveryStatus.SENT} and len(result.outcomes) == 2
    for delivery in batch:
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENT
        assert [a.outcome for a in delivery.attempts.all()] == [AttemptOutcome.SENT]
    assert len(smtp.messages) == 2  # sent once: only the write was tried again


@pytest.mark.django_db(transaction=True)
def test_a_database_that_stays_away_leaves_the_sends_to_the_sweep_and_never_sends_again(smtp, settings):
    [delivery] = emails(1)
    # The claim's deadline minus the margin leaves no time for a retry of the write.
    settings.NOTIFIER_SENDING_TIMEOUT_SECONDS = 15

    def database_gone(execute, sql, params, many, context):
        if "FOR UPDATE" in sql:
            raise OperationalError("the database system is shutting down")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(database_gone):
        result = deliveries_send(delivery_ids=[str(delivery.id)])

    delivery.refresh_from_db()
    assert result.outcomes == {}
    assert delivery.status == DeliveryStatus.SENDING  # the sweep's sending deadline takes it from here
    assert len(smtp.messages) == 1
