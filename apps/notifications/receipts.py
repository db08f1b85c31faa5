"""Delivery receipts: a provider reporting, after it accepted a message, whether it reached the user."""

import logging

from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)


def delivery_report_receipt(
    *, channel: str, provider_message_id: str, delivered: bool, error_code: str = "", error_message: str = ""
) -> Delivery | None:
    """Move the sent delivery with this provider message id to `delivered` or `undelivered`.

    Only a `sent` delivery moves, in one conditional UPDATE: a receipt cannot resurrect a
    delivery that failed or was cancelled, and the first final receipt wins (providers report a
    message delivered or undelivered, not both; a late or repeated one changes nothing). Returns
    the delivery as it now stands, or None when no delivery has that id, which includes a receipt
    arriving before the worker recorded the send: that one is lost, and the delivery stays `sent`.
    """
    deliveries = Delivery.objects.filter(channel=channel, provider_message_id=provider_message_id)
    new_status = DeliveryStatus.DELIVERED if delivered else DeliveryStatus.UNDELIVERED
    fields = {"status": new_status, "status_changed_at": timezone.now()}
    if not delivered:
        fields.update(
            last_error_code=error_code,
            last_error=error_message or f"The provider reported the message undelivered (error {error_code or 'unknown'}).",
        )
    if deliveries.filter(status=DeliveryStatus.SENT).update(**fields):
        logger.info("%s delivery %s: provider reports %s", channel, provider_message_id, new_status)
    delivery = deliveries.first()
    if delivery is None:
        logger.warning("%s receipt for unknown provider message %s ignored", channel, provider_message_id)
    elif delivery.status != new_status:
        logger.info("%s receipt %s for a delivery in %s ignored", channel, new_status, delivery.status)
    return delivery
