"""The operators' console: the admin's pages for this app, found by Django's admin autodiscovery
(it imports `apps.notifications.admin`, this package), so each module registering a ModelAdmin
is imported here. The dashboard is a view of its own, routed in notifier/urls.py."""

from apps.notifications.admin import notifications, status_webhooks  # noqa: F401  (they register with the admin site)
