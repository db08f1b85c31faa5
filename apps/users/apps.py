from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "apps.users"
    # Not "users": the people we notify must never be mistaken for the admin's auth users.
    label = "recipients"
    verbose_name = "Notified users"
