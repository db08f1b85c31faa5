"""The preference page end users reach by a signed link (apps/preference_center). Imported by base.py."""

from notifier.settings.environment import env

# Life of a preference link (POST /users/{id}/preferences-link, and every email's footer link,
# `{{ preferences_url }}`). The link is its own credential, so it expires; long enough for an email
# read a few weeks late.
NOTIFIER_PREFERENCES_LINK_TTL_SECONDS = env.int("NOTIFIER_PREFERENCES_LINK_TTL_SECONDS", default=30 * 24 * 3600)
