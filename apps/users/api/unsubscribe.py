"""The page an email's List-Unsubscribe link opens (RFC 8058 one-click unsubscribe).

Mail clients POST `List-Unsubscribe=One-Click` to the link, form-encoded, without cookies or any
credentials: the signed token in the URL is the only authority, so the view is csrf-exempt and
touches no session. A GET changes nothing (mail scanners and link previewers follow every link):
it shows a page whose button makes the same POST.
"""

from django.http import HttpResponse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.users.models import UnsubscribeSource
from apps.users.preference_links import preferences_link_issue
from apps.users.selectors import recipient_for_signed_link
from apps.users.services import recipient_unsubscribe
from apps.users.unsubscribe import unsubscribe_token_read

# The only channel with a List-Unsubscribe header.
CHANNEL = "email"
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}
button{{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_view(request, token: str):
    target = unsubscribe_token_read(token)
    if target is None:
        return _page(400, "This unsubscribe link is not valid",
                     mark_safe("<p>The link was changed or cut short. Use the unsubscribe link of the email itself, "
                               "exactly as it is.</p>"))
    recipient = recipient_for_signed_link(project_id=target.project_id, recipient_id=target.recipient_id)
    if recipient is None:
        return _page(404, "Nothing to unsubscribe",
                     mark_safe("<p>This address is no longer on file: no more emails will be sent to it.</p>"))
    what = format_html("<strong>{}</strong> emails from <strong>{}</strong>", target.category, recipient.project.name)
    preferences_url, _ = preferences_link_issue(project_id=recipient.project_id, recipient_id=recipient.id)
    everything = format_html('<p><a href="{}">Manage all your notification settings</a></p>', preferences_url)
    if request.method != "POST":  # GET, and HEAD (link checkers): a question, never the answer
        return _page(200, "Unsubscribe?", format_html(
            '<p>Stop receiving {}?</p><form method="post"><input type="hidden" name="confirm" value="page">'
            "<button type=\"submit\">Unsubscribe</button></form>{}", what, everything))
    one_click = request.POST.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    recipient_unsubscribe(target=target, channel=CHANNEL,
                          source=UnsubscribeSource.ONE_CLICK if one_click else UnsubscribeSource.PAGE)
    return _page(200, "You are unsubscribed", format_html("<p>You will no longer receive {}.</p>{}", what, everything))


def _page(status: int, title: str, body: str) -> HttpResponse:
    response = HttpResponse(format_html(_PAGE, title=title, body=body), status=status,
                            content_type="text/html; charset=utf-8")
    # The URL is a credential: keep it out of caches and of the Referer of anything the page loads.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
