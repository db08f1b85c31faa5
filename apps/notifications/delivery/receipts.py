"""Delivery receipts: a provider reporting, after it accepted a message, whether it reached the user."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryStatus, EarlyReceipt
from apps.notifications.outbox.status_events import status_change, status_events_record, status_hooked
from apps.notifications.workflow_hooks import deliveries_settled

logger = logging.getLogger(__name__)

# How long a receipt waits for its send to be recorded. A worker records a send within its task
# time limit; a receipt older than this names a message whose send never will be (a worker died
# after the provider accepted it, and the retry went out under another message id).
EARLY_RECEIPT_TTL = timedelta(days=1)


def delivery_report_receipt(
    *, channel: str, provider_message_id: str, delivered: bool, error_code: str = "", error_message: str = ""
) -> Delivery | None:
    """Move the sent delivery with this provider message id to `delivered` or `undelivered`.

    Only a `sent` delivery moves, in one conditional UPDATE: a receipt cannot resurrect a
    delivery that failed or was cancelled, and the first final receipt wins (providers report a
    message delivered or undelivered, not both; a late or repeated one changes nothing).

    A receipt can arrive before the worker has recorded the send (the provider answered the
    worker, then called us back before the worker's commit): it is kept as an EarlyReceipt, and
    the worker applies it once the send is recorded (early_receipt_apply). Returns the delivery
    as it now stands, or None when no delivery has that message id yet.
    """
    deliveries = Delivery.objects.filter(channel=channel, provider_message_id=provider_message_id)
    receipt = EarlyReceipt(channel=channel, provider_message_id=provider_message_id, delivered=delivered,
                           error_code=error_code, error_message=error_message)
    _receipt_apply(deliveries, receipt)
    delivery = deliveries.first()
    if delivery is None:
        _early_receipt_keep(receipt)
        # The worker may have committed the send since the lookup above. It looks for early
        # receipts only after its commit and this looks again only after storing the receipt,
        # so at least one of the two sees the other's write.
        if _receipt_apply(deliveries, receipt):
            EarlyReceipt.objects.filter(channel=channel, provider_message_id=provider_message_id).delete()
        delivery = deliveries.first()
    elif delivery.status != _status_reported(receipt):
        logger.info("%s receipt %s for a delivery in %s ignored", channel, _status_reported(receipt), delivery.status)
    return delivery


def early_receipt_apply(delivery: Delivery) -> None:
    """Apply a receipt that came in before this delivery's send was recorded; call after that commit."""
    receipts = EarlyReceipt.objects.filter(channel=delivery.channel, provider_message_id=delivery.provider_message_id)
    receipt = receipts.first()
    if receipt is None:
        return
    deliveries = Delivery.objects.filter(id=delivery.id, provider_message_id=delivery.provider_message_id)
    _receipt_apply(deliveries, receipt)
    receipts.delete()


def _receipt_apply(deliveries, receipt: EarlyReceipt) -> bool:
    """Move the `sent` deliveries among `deliveries` to the status the receipt reports, with the
    status webhook events of the change, in one transaction."""
    status = _status_reported(receipt)
    fields = {"status": status, "status_changed_at": timezone.now()}
    if not receipt.delivered:
        fields.update(
            last_error_code=receipt.error_code,
            last_error=receipt.error_message
            or f"The provider reported the message undelivered (error {receipt.error_code or 'unknown'}).",
        )
    with transaction.atomic():
        # Locked and read first: the events name the deliveries the UPDATE moves, and the project
        # row (loaded with them) says whether events are wanted at all.
        sent = list(deliveries.filter(status=DeliveryStatus.SENT).select_for_update(of=("self",))
                    .select_related("notification__project"))
        if not sent:
            return False
        Delivery.objects.filter(id__in=[d.id for d in sent]).update(**fields)
        if not receipt.delivered:
            deliveries_settled([d.notification_id for d in sent if d.notification.workflow_key])
        hooked = [d for d in sent if status_hooked(d.notification.project)]
        for delivery in hooked:
            for name, value in fields.items():
                setattr(delivery, name, value)
        status_events_record(changes=[status_change(d, previous_status=DeliveryStatus.SENT) for d in hooked])
    logger.info("%s delivery %s: provider reports %s", receipt.channel, receipt.provider_message_id, status)
    return True


def _early_receipt_keep(receipt: EarlyReceipt) -> None:
    # Rare enough (a callback racing the worker's commit) to prune old ones on this path alone.
    EarlyReceipt.objects.filter(received_at__lt=timezone.now() - EARLY_RECEIPT_TTL).delete()
    EarlyReceipt.objects.bulk_create([receipt], ignore_conflicts=True)  # a repeat keeps the first
    logger.info("%s receipt for %s arrived before its send was recorded; kept until it is",
                receipt.channel, receipt.provider_message_id)


def _status_reported(receipt: EarlyReceipt) -> str:
    return DeliveryStatus.DELIVERED if receipt.delivered else DeliveryStatus.UNDELIVERED
