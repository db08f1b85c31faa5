"""Headers the channels that carry them (email, webhooks) put on what they send."""

# Our delivery id, the same on every attempt: a message can be traced, and a repeat dropped, downstream.
DELIVERY_ID_HEADER = "X-Notifier-Delivery-Id"

# One-click unsubscribe (RFC 2369 and RFC 8058): the links, and the POST body mail clients send to the https one.
LIST_UNSUBSCRIBE_HEADER = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST_HEADER = "List-Unsubscribe-Post"
LIST_UNSUBSCRIBE_POST_VALUE = "List-Unsubscribe=One-Click"
