#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")
    from django.core.management import execute_from_command_line

    from apps.core.metrics_folder import metrics_folder_use

    # runserver serves /metrics, and commands count what they send: all in the host's folder.
    metrics_folder_use()

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
