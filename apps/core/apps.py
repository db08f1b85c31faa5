from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from apps.core import checks  # noqa: F401  (registers the system checks)

        state_dirs_create(dirs=settings.NOTIFIER_STATE_DIRS)


def state_dirs_create(*, dirs) -> None:
    """Create the local state folders missing (settings.NOTIFIER_STATE_DIRS) as the process starts.

    Only missing ones: a read-only filesystem whose folders exist already is fine.
    """
    for folder in map(Path, dirs):
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
