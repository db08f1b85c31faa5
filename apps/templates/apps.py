from django.apps import AppConfig


class TemplatesConfig(AppConfig):
    name = "apps.templates"
    # "templates" reads like a template folder and invites clashes; the label says what these are.
    label = "notification_templates"
    verbose_name = "Notification templates"
