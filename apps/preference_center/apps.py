from django.apps import AppConfig


class PreferenceCenterConfig(AppConfig):
    """The page where a user sets their own preferences, behind a signed link (no login)."""

    name = "apps.preference_center"
    label = "preference_center"
    verbose_name = "Preference page"
