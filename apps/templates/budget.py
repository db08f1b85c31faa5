"""What one render may spend: output bytes, values built along the way, and time.

Checking the output after each node is not enough: a filter builds its value before any node
sees it, so `{% with a=a|add:a %}` nested 32 times builds a 34 GB string inside one node. The
filters of apps.templates.library therefore ask the render's budget before they build a value
(when its size can be known in advance) and account for it after, and every check also looks at
the clock. The budget of the render in progress is found through a context variable, since
Django passes filters their arguments but not the context.
"""

import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

# Values that filters build are counted on top of the output, as working memory: a legitimate
# template builds a few times its output at most (a body escaped, then its lines numbered).
WORKING_BYTES_PER_OUTPUT_BYTE = 8


class TemplateRenderError(Exception):
    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.path = path  # the failing part inside the rendered value, e.g. "subject" or "user.name"


class Budget:
    """What one render_value call may still spend."""

    def __init__(self, *, max_bytes: int | None = None, max_seconds: float | None = None):
        self.max_bytes = settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES if max_bytes is None else max_bytes
        self.max_seconds = settings.NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS if max_seconds is None else max_seconds
        self.max_working = self.max_bytes * WORKING_BYTES_PER_OUTPUT_BYTE
        self.deadline = time.monotonic() + self.max_seconds
        self.rendered_bytes = 0  # the parts already rendered
        self.pending_chars = 0  # the part being rendered, so far (a character is at least a byte)
        self.working_chars = 0  # every value a filter built, alive or not

    def check(self) -> None:
        if self.rendered_bytes + self.pending_chars > self.max_bytes:
            raise TemplateRenderError(f"The rendered content is larger than {self.max_bytes} bytes.")
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateRenderError(f"Rendering took longer than {self.max_seconds:g} seconds.")

    def allow(self, size: int, *, what: str) -> None:
        """Refuse, before it is built, a value of this many characters (or items)."""
        if size > self.max_bytes:
            raise TemplateRenderError(f"{what} would build a value larger than {self.max_bytes} bytes.")
        if self.working_chars + size > self.max_working:
            raise TemplateRenderError(f"The values built by filters would pass {self.max_working} bytes.")
        self.check_time()

    def spend(self, size: int, *, what: str) -> None:
        """Account for a value just built."""
        self.allow(size, what=what)
        self.working_chars += size


_current: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def budget_active(budget: Budget):
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def budget_current() -> Budget:
    """The budget of the render in progress; outside a render (compiling), a fresh default one."""
    return _current.get() or Budget()
