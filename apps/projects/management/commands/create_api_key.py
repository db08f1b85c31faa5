import getpass

from django.core.management.base import BaseCommand

from apps.projects.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for PROJECT (creating the project if needed) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("project")
        parser.add_argument("--name", default="", help="A label to recognise the key by.")

    def handle(self, *args, project: str, name: str, **options):
        api_key, raw_key = api_key_create(project_name=project, name=name, actor_label=f"cli:{_os_user()}")
        self.stderr.write(f"Created API key {api_key.prefix}… for project {api_key.project.name!r}. "
                          "It is shown only now; only its hash is stored.")
        self.stdout.write(raw_key)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid, e.g. in a container
        return "unknown"
