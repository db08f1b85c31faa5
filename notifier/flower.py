"""Start Flower (the Procfile's `flower`) only behind a real password.

Flower takes `--basic-auth=$FLOWER_BASIC_AUTH` at face value: with the variable empty it stores
one empty credential, and `Authorization: Basic =` (an empty user:password) matches it, opening
the workers' controls (shut down, resize pools, revoke) to anyone who reaches the port. So this
launcher checks the variable first and refuses to start without `user:password` pairs whose
parts are both non-empty, then runs `celery -A celery_app flower` with them and any other
arguments it was given (e.g. `--port=5555 --address=127.0.0.1`).

Run as `python -m notifier.flower [flower options]`; it imports neither Django nor Celery.
"""

import os
import shutil
import sys

# The placeholder in .env.example: a copied example is not a password.
EXAMPLE_PASSWORDS = frozenset({"change-me"})
MIN_PASSWORD_LENGTH = 8


def basic_auth_problem(value: str) -> str:
    """Why FLOWER_BASIC_AUTH cannot protect Flower, or "" when it can."""
    entries = [entry.strip() for entry in value.split(",")]
    if not value.strip() or not all(entries):
        return "FLOWER_BASIC_AUTH must be user:password (several separated by commas), and is empty."
    for entry in entries:
        user, _, password = entry.partition(":")
        if not user or not password:
            return f"FLOWER_BASIC_AUTH entry {user or '(no user)'!r} needs both a user and a password (user:password)."
        if password in EXAMPLE_PASSWORDS or len(password) < MIN_PASSWORD_LENGTH:
            return (f"FLOWER_BASIC_AUTH: the password of {user!r} is the example one or shorter than "
                    f"{MIN_PASSWORD_LENGTH} characters.")
    return ""


def main(argv: list[str]) -> int:
    basic_auth = os.environ.get("FLOWER_BASIC_AUTH", "")
    problem = basic_auth_problem(basic_auth)
    if problem:
        print(f"Flower not started: {problem}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.pop("FLOWER_UNAUTHENTICATED_API", None)  # would open the API without credentials
    celery = shutil.which("celery", path=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")) or "celery"
    os.execve(celery, [celery, "-A", "celery_app", "flower", f"--basic-auth={basic_auth}", *argv], env)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
