"""The operators' console (Django's admin): its logins. Imported by base.py."""

from datetime import timedelta

from notifier.settings.environment import env

# --- Admin logins: rate-limited by django-axes (docs/operations.md, "The console") ---------------
# AxesStandaloneBackend first: it refuses a locked-out login before a password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Failed logins for one user name from one address before both are locked out; a success resets them.
AXES_FAILURE_LIMIT = env.int("NOTIFIER_ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# How long a lockout lasts (then the failures are forgotten).
AXES_COOLOFF_TIME = timedelta(minutes=env.int("NOTIFIER_ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"


def _admin_login_client_address(request) -> str | None:
    """The connection's address. uvicorn sets it from X-Forwarded-For only for the proxies in
    FORWARDED_ALLOW_IPS, so a client cannot pick its own address to dodge the limit (as it could if
    the header were read here, which django-ipware does when installed)."""
    return request.META.get("REMOTE_ADDR")


AXES_CLIENT_IP_CALLABLE = _admin_login_client_address
