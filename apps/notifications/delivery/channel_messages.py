"""From rows to channel messages and back: what the pipeline hands a backend, and how it applies
what the backend asks for.

A backend knows none of our tables: `channel_message_build` copies into a ChannelMessage what its
channel needs from the delivery's rows (loaded with the batch), and `actions_apply` carries out a
result's actions through the app owning the data (users: devices).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from apps.channels.base import Action, ChannelMessage, DeactivateDevice, PushDevice
from apps.channels.registry import backend_get, channel_enabled
from apps.notifications.delivery.unsubscribe_headers import unsubscribe_headers
from apps.notifications.models import Delivery, DeliveryAttempt
from apps.projects.selectors import project_webhook_secrets
from apps.users.selectors import devices_active_by_recipient
from apps.users.services import device_deactivate


@dataclass
class BatchAddresses:
    """What a batch's messages need beyond its rows (for backends that send to the user's
    devices: the devices, and what earlier attempts reached): loaded once per batch."""

    devices: dict[int, list] = field(default_factory=dict)  # recipient id → active devices
    reached: dict[str, dict[int, dict]] = field(default_factory=dict)  # delivery id → device id → result


def batch_addresses_load(deliveries: Sequence[Delivery]) -> BatchAddresses:
    """Two queries for a batch whose backend sends to devices (devices, earlier attempts), none otherwise."""
    push = [d for d in deliveries if d.notification.recipient_id is not None and _sends_to_devices(d.channel)]
    if not push:
        return BatchAddresses()
    devices = devices_active_by_recipient(recipient_ids=[d.notification.recipient_id for d in push])
    reached: dict[str, dict[int, dict]] = {}
    responses = DeliveryAttempt.objects.filter(delivery_id__in=[d.id for d in push]).values_list(
        "delivery_id", "provider_response")
    for delivery_id, response in responses:
        for result in (response or {}).get("devices", []):
            if result.get("outcome") == "sent":
                reached.setdefault(str(delivery_id), {})[result["device_id"]] = result
    return BatchAddresses(devices=devices, reached=reached)


def _sends_to_devices(channel: str) -> bool:
    # A channel turned off since the delivery was queued has no backend: the send reports it.
    return channel_enabled(channel) and backend_get(channel).sends_to_devices


def channel_message_build(delivery: Delivery, content: dict, addresses: BatchAddresses) -> ChannelMessage:
    """The message a backend sends for `delivery` (whose notification's user still exists)."""
    notification = delivery.notification
    recipient, project = notification.recipient, notification.project
    delivery_id = str(delivery.id)
    return ChannelMessage(
        delivery_id=delivery_id,
        channel=delivery.channel,
        content=content,
        project_id=project.id,
        recipient_id=recipient.id,
        email=recipient.email,
        phone=recipient.phone,
        devices=tuple(PushDevice(id=d.id, token=d.token, platform=d.platform)
                      for d in addresses.devices.get(recipient.id, ())),
        devices_reached=addresses.reached.get(delivery_id, {}),
        webhook_url=project.webhook_url,
        webhook_secrets=project_webhook_secrets(project=project),
        notification_id=str(notification.id),
        template_key=notification.template.key,
        user_external_id=notification.to,
        created_at=notification.created_at,
        headers=MappingProxyType(unsubscribe_headers(channel=delivery.channel, project=project,
                                                     recipient_id=recipient.id, category=notification.category)),
    )


def actions_apply(actions: Iterable[Action]) -> None:
    """Carry out what a backend asked for, through the app that owns the data."""
    for action in actions:
        if isinstance(action, DeactivateDevice):
            device_deactivate(device_id=action.device_id)
        else:
            raise TypeError(f"Unknown channel action {action!r}")
