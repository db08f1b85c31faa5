"""A worker compiles Django's email address check before its pool children fork (celery_app.py,
`send_path_compiled`): each child inherits it compiled, where each send thread of each child
compiled it on its first email (23 ms each)."""

from django.core.validators import EmailValidator
from django.utils.functional import empty

from celery_app import send_path_compiled


def test_the_worker_compiles_the_email_check_before_its_children_fork():
    lazily_compiled = (EmailValidator.user_regex, EmailValidator.domain_regex)
    for pattern in lazily_compiled:
        pattern._wrapped = empty  # as in a process that has checked no address yet

    send_path_compiled()

    assert all(pattern._wrapped is not empty for pattern in lazily_compiled)
