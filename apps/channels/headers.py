"""Headers every channel that speaks a header-bearing protocol (email, webhooks) puts on what it sends."""

# The same on every attempt of a delivery, so a receiver can drop repeats.
DELIVERY_ID_HEADER = "X-Notifier-Delivery-Id"
