"""Seed a demo project for `make run`: an API key, an admin login, a user and a template."""

import shlex

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.projects.services import api_key_create
from apps.templates.services import template_version_create
from apps.users.services import recipient_upsert

DEMO_ADMIN = ("admin", "admin")
DEMO_TEMPLATE = {
    "email": {
        "subject": "Welcome, {{ name }}!",
        "text": "Hi {{ name }},\n\nyour account is ready.\n",
        "html": "<p>Hi <strong>{{ name }}</strong>,</p><p>your account is ready.</p>",
    },
    "in_app": {"title": "Welcome, {{ name }}!", "body": "Your account is ready."},
}
# What the button of /inbox/demo/ sends (apps/inbox/pages.py).
DEMO_INBOX_TEMPLATE = {"in_app": {"title": "{{ title }}", "body": "{{ body }}"}}


class Command(BaseCommand):
    help = "Create (or refresh) the demo project, and print how to send it a notification."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url: str, **options):
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_ADMIN[0]).exists():
            user_model.objects.create_superuser(DEMO_ADMIN[0], "admin@localhost", DEMO_ADMIN[1])
        api_key, raw_key = api_key_create(project_name="demo", name="make run")
        recipient_upsert(project=api_key.project, external_id="demo-user", email="demo-user@example.com", name="Ada")
        template_version_create(project=api_key.project, key="welcome", channels=DEMO_TEMPLATE)
        template_version_create(project=api_key.project, key="inbox-demo", channels=DEMO_INBOX_TEMPLATE)

        body = '{"to": "demo-user", "template": "welcome", "data": {"name": "Ada"}, "channels": ["email"]}'
        curl = (f"curl -sS -X POST {base_url}/api/v1/notifications -H {shlex.quote('Authorization: Api-Key ' + raw_key)}"
                f" -H 'Content-Type: application/json' -d {shlex.quote(body)}")
        mail = settings.EMAIL_FILE_PATH if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend") else settings.EMAIL_HOST
        self.stdout.write(
            f"\nNotifier is starting at {base_url}/  (API docs: {base_url}/api/docs/)\n"
            f"Admin: {base_url}/admin/  login {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}\n"
            f"Inbox widget demo: {base_url}/inbox/demo/\n"
            f"Demo API key: {raw_key}\n"
            f"Mail goes to: {mail}\n"
            "Send a notification:\n"
            f"{curl}\n"
            f"Then read it back: curl -sS {base_url}/api/v1/notifications/<id> -H 'Authorization: Api-Key {raw_key}'\n"
        )
