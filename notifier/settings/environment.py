"""Where the settings read from: the environment, and `.env` when present (read once, here).

The settings read a copy of the environment, completed by `.env`, and never write to the process's
own: reading the settings must not change what a process or its children see (whatever a
process needs in its environment, it sets as it starts; see apps/core/metrics_folder.py).
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class _SettingsEnv(environ.Env):
    ENVIRON = dict(os.environ)  # read_env() fills this copy; os.environ stays as the process got it


env = _SettingsEnv()
_SettingsEnv.read_env(BASE_DIR / ".env", overwrite=False)

# Embedded-mode state: the SQLite file, the filesystem broker's folders, the file mailbox, the
# metrics folder. Nothing here creates a directory: a process creates the ones it needs when it
# starts (NOTIFIER_STATE_DIRS, PROMETHEUS_MULTIPROC_DIR).
VAR_DIR = Path(env("NOTIFIER_DATA_DIR", default=str(BASE_DIR / "var")))

# The SECRET_KEY of dev and test when DJANGO_SECRET_KEY is not set; prod has no default.
INSECURE_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"
