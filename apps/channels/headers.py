"""Headers the channels that carry them (email, webhooks) put on what they send."""

# Our delivery id, the same on every attempt: a message can be traced, and a repeat dropped, downstream.
DELIVERY_ID_HEADER = "X-Notifier-Delivery-Id"
