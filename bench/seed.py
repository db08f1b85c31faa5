"""The bench's fixtures, written straight to its database: one project and API key, an email-only
template, and `--users` users (bulk inserts: seeding 100,000 through the API would take longer than
the benchmark). Run by bench/stack.py in the stack's environment; prints what the load needs as JSON.
"""

import argparse
import json

import django

TEMPLATE_KEY = "bench"
BATCH = 5000


def user_id(number: int) -> str:
    return f"user-{number}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, required=True)
    args = parser.parse_args()
    django.setup()

    from apps.projects.services import api_key_create
    from apps.templates.services import template_version_create
    from apps.users.models import Recipient

    api_key, raw_key = api_key_create(project_name="bench", name="make bench")
    project = api_key.project
    template_version_create(project=project, key=TEMPLATE_KEY, channels={
        "email": {"subject": "Order {{ order }} shipped", "text": "Hello {{ name }}, order {{ order }} is on its way."},
    })
    for start in range(0, args.users, BATCH):
        Recipient.objects.bulk_create(
            Recipient(project=project, external_id=user_id(number), email=f"{user_id(number)}@example.com",
                      name=f"User {number}")
            for number in range(start, min(start + BATCH, args.users))
        )
    print(json.dumps({"api_key": raw_key, "template": TEMPLATE_KEY, "users": args.users}))


if __name__ == "__main__":
    main()
