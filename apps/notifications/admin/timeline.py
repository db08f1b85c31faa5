"""A notification's story on one page of the console: its deliveries, their attempts and the
operators' actions, in the order they happened."""

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.core.console import badge
from apps.notifications.models import Notification
from apps.notifications.workflow_hooks import workflow_hooks


def notification_timeline(notification: Notification):
    """Rows of (time, channel, what, detail) from prefetched deliveries, attempts and operator actions."""
    events = [(notification.created_at, "", badge("accepted", "queued"),
               f"priority {notification.priority}" + (f", send at {notification.send_at:%Y-%m-%d %H:%M:%S}"
                                                      if notification.send_at else ""))]
    for delivery in notification.deliveries.all():
        link = format_html('<a href="{}">{}</a>', reverse("admin:notifications_delivery_change", args=[delivery.pk]),
                           delivery.channel)
        events.append((delivery.created_at, link, badge("created", "queued"), delivery.skip_reason or delivery.hold_reason))
        for attempt in delivery.attempts.all():
            passed = [f"{p.get('provider')}: {p.get('error_code')}" for p in attempt.passed_over or []]
            detail = " ".join(filter(None, [f"attempt {attempt.number}", f"{attempt.duration_ms} ms",
                                            f"via {attempt.provider}" if attempt.provider else "",
                                            f"(passed over {', '.join(passed)})" if passed else "",
                                            attempt.error_code, attempt.error_message[:200],
                                            attempt.provider_message_id]))
            events.append((attempt.started_at, link, badge(attempt.outcome, attempt.outcome), detail))
        for action in delivery.operator_actions.all():
            events.append((action.created_at, link, badge(f"{action.action} by {action.actor_label}", "pending"),
                           f"was {action.previous_status}" + (f": {action.note}" if action.note else "")))
        events.append((delivery.status_changed_at, link, badge(delivery.status, delivery.status),
                       f"{delivery.last_error_code} {delivery.last_error[:200]}".strip()))
    if (hooks := workflow_hooks()) is not None:
        events.extend(hooks.timeline_events(notification))  # the workflow run's steps, if any
    events.sort(key=lambda event: event[0])
    rows = format_html_join(
        "", "<tr><td style='white-space:nowrap'>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((f"{when:%Y-%m-%d %H:%M:%S.%f}"[:-3], channel, what, detail) for when, channel, what, detail in events),
    )
    return format_html('<table class="console-timeline"><thead><tr><th>when (UTC)</th><th>channel</th><th>event</th>'
                       '<th>detail</th></tr></thead><tbody>{}</tbody></table>', rows)
