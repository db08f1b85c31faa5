"""What every page of the operators' console (the Django admin) shares: status badges and the
confirmation page that bulk actions go through before they change anything."""

from collections.abc import Callable

from django.contrib import admin
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

# A status's colour: green reached the provider or the user, red ended badly, amber still moving
# after a problem, blue moving, grey left alone.
STATUS_COLOURS = {
    "sent": "#2e7d32", "delivered": "#1b5e20", "undelivered": "#c62828",
    "failed": "#c62828", "dead": "#6a1b9a",
    "retrying": "#ef6c00", "pending": "#546e7a", "queued": "#1565c0", "sending": "#0277bd",
    "cancelled": "#757575", "skipped": "#9e9e9e",
    # attempt outcomes
    "transient_error": "#ef6c00", "permanent_error": "#c62828", "internal_error": "#ad1457", "worker_lost": "#ad1457",
}


# Rows one bulk action (Replay, Discard) takes from the console, oldest first; the rest wait for the
# next run, so a whole queue after an outage is a few runs, each one transaction a web request finishes.
MAX_ROWS_PER_ACTION = 1000


def capped_action_summary(*, verb: str, noun: tuple[str, str], count: int) -> tuple[int, str]:
    """How many of `count` eligible rows one action takes, and the sentence that says so."""
    taking = min(count, MAX_ROWS_PER_ACTION)
    summary = f"{verb} {taking} {noun[0] if taking == 1 else noun[1]}"
    if taking < count:
        summary += f" (the oldest {taking} of {count}: at most {MAX_ROWS_PER_ACTION} per action; run it again for the rest)"
    return taking, summary


class ReadOnlyMixin:
    """Rows written by the pipeline and the services, never added, edited or deleted by hand. The
    change permission stays: it opens a row's page (every field read-only) and the actions that
    go through a service (Replay, Discard)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A record operators read and never act on (audit entries, unsubscribes)."""

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "#455a64")


def badge(text: str, status: str):
    return format_html(
        '<span class="console-badge" data-status="{}" style="background:{};color:#fff;border-radius:3px;'
        'padding:1px 6px;margin-right:3px;white-space:nowrap;font-size:11px">{}</span>',
        status, status_colour(status), text,
    )


def badges(items):
    """Several badges in a row, from (text, status) pairs."""
    return format_html_join("", "{}", ((badge(text, status),) for text, status in items))


def confirm_action(
    model_admin: admin.ModelAdmin, request, queryset, *, action: str, title: str, summary: str,
    perform: Callable[[], None], warning: str = "",
):
    """Ask before a bulk action changes anything; perform it once the operator confirms.

    The first call (from the action menu) answers a page saying how many rows the action will
    affect; its form posts the same selection back with `confirmed`, and then `perform` runs.
    Returns None after performing, so the admin goes back to the list with its filters.
    """
    if request.POST.get("confirmed") == "yes":
        perform()
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "summary": summary,
        "warning": warning,
        "action": action,
        "queryset": queryset[:20],
        "count": queryset.count(),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "opts": model_admin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/console_confirm_action.html", context)
