"""What the inbox serves to browsers besides the API: the widget's script, and its demo page.

GET /inbox/widget.js is the <notifier-inbox> element (widget/notifier-inbox.js, docs/api.md,
"Embedding the inbox"): one file, no build step, read once per process. Product pages on any
origin load it with a <script> tag; it is public, so any origin may also fetch it (a module
script does, with CORS). Cached for an hour, then revalidated by its ETag: a new version reaches
pages within the hour at most, and a revalidation costs no body.

/inbox/demo/ exists only with NOTIFIER_INBOX_DEMO (the dev settings: `make run`): the widget for
seed_demo's user, next to a button that sends them a message, so a new user sees the loop.
"""

import hashlib
from functools import cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from apps.core.exceptions import ApplicationError
from apps.inbox.tokens import inbox_token_issue
from apps.notifications.intake.services import NotificationRequest, notifications_create
from apps.projects.selectors import project_find
from apps.users.selectors import recipients_find

WIDGET_PATH = Path(__file__).resolve().parent / "widget" / "notifier-inbox.js"
WIDGET_MAX_AGE_SECONDS = 3600

# What seed_demo creates (apps/notifications/management/commands/seed_demo.py).
DEMO_PROJECT, DEMO_USER, DEMO_TEMPLATE = "demo", "demo-user", "inbox-demo"


@cache
def _widget() -> tuple[bytes, str]:
    body = WIDGET_PATH.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@require_http_methods(["GET", "HEAD"])
def inbox_widget_script(request: HttpRequest) -> HttpResponse:
    body, etag = _widget()
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={WIDGET_MAX_AGE_SECONDS}"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_http_methods(["GET", "POST"])
def inbox_demo(request: HttpRequest) -> HttpResponse:
    project = project_find(name=DEMO_PROJECT)
    recipient = recipients_find(project=project, external_ids=[DEMO_USER]).get(DEMO_USER) if project else None
    if recipient is None:
        return HttpResponse("No demo user: `make run` creates one (python manage.py seed_demo).", status=404,
                            content_type="text/plain; charset=utf-8")
    if request.method == "POST":
        moment = timezone.localtime().strftime("%H:%M:%S")
        [outcome] = notifications_create(project=project, requests=[NotificationRequest(
            to=DEMO_USER, template_key=DEMO_TEMPLATE, channels=["in_app"],
            data={"title": f"Hello at {moment}", "body": "Sent from the demo page's button."})])
        if isinstance(outcome, ApplicationError):  # e.g. seed_demo's template was deleted
            return HttpResponse(outcome.message, status=outcome.status_code, content_type="text/plain; charset=utf-8")
        return HttpResponseRedirect(request.path, status=303)  # the same page, without JavaScript too
    token, _ = inbox_token_issue(recipient=recipient)
    return render(request, "inbox/demo.html", {"api_base": request.build_absolute_uri("/").rstrip("/"),
                                               "token": token, "user": recipient.external_id})
