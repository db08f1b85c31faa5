"""The preference page: `/preferences/<token>`, the signed link of POST /users/{id}/preferences-link
and of every email's footer (`{{ preferences_url }}`).

Plain server-rendered HTML, usable without JavaScript, in the user's language (their locale, else
the project's default; English and French ship). The signed token in the URL is the only
credential, as for the unsubscribe page: the view is csrf-exempt and touches no session or cookie.
Django's CSRF check defends a credential the browser adds by itself (a session cookie) from being
used by another site's form; here there is none: a forged POST must carry the token in its URL,
and whoever knows the token can use the page anyway. A form that set a CSRF cookie would also
fail for the users whose browser refuses cookies.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.notifications.intake.selectors import notification_categories
from apps.preference_center.form import PreferenceFormError, preference_form, preferences_from_form
from apps.users.preference_links import ExpiredPreferencesToken, InvalidPreferencesToken, preferences_token_read
from apps.users.selectors import recipient_for_signed_link, recipient_preferences
from apps.users.services import recipient_preferences_set

_SAVED_FLAG = "saved"


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def preferences_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        target = preferences_token_read(token)
    except ExpiredPreferencesToken:
        return _refusal(request, 410, _("This link has expired"),
                        _("Links to your notification settings work for a limited time. Use the link of a recent "
                          "email, or ask the service that sent it for a new one."))
    except InvalidPreferencesToken:
        return _refusal(request, 400, _("This link is not valid"),
                        _("The link was changed or cut short. Use the link exactly as you received it."))
    recipient = recipient_for_signed_link(project_id=target.project_id, recipient_id=target.recipient_id)
    if recipient is None:
        return _refusal(request, 404, _("Nothing to set"), _("This user is no longer on file."))

    with translation.override(_language(recipient.locale or recipient.project.default_locale)):
        preferences = recipient_preferences(recipient=recipient)
        categories = _categories(recipient=recipient, preferences=preferences)
        error = ""
        if request.method == "POST":
            try:
                recipient_preferences_set(recipient=recipient, **preferences_from_form(
                    preferences=preferences, categories=categories, posted=request.POST))
            except PreferenceFormError as exc:
                error = str(exc)
            else:
                # Post/redirect/get: reloading the confirmation does not submit the form again.
                return _private(HttpResponseRedirect(f"{request.path}?{_SAVED_FLAG}=1", status=303))
        form = preference_form(preferences=preferences, categories=categories)
        return _private(render(request, "preference_center/page.html", status=400 if error else 200, context={
            "project_name": recipient.project.name, "form": form, "error": error,
            "saved": request.method == "GET" and _SAVED_FLAG in request.GET,
            "language": translation.get_language(),
        }))


def _categories(*, recipient, preferences: dict) -> list[str]:
    """Those the project has sent in, those the user has a switch for, and the critical ones."""
    named = set(notification_categories(project=recipient.project))
    return sorted(named | set(preferences["categories"]) | set(preferences["critical_categories"]))


def _language(locale: str) -> str:
    try:
        return translation.get_supported_language_variant(locale.replace("_", "-").lower())
    except LookupError:
        return "en"


def _refusal(request: HttpRequest, status: int, title, message) -> HttpResponse:
    # The user is unknown here: their browser's language, as far as it is one the page speaks.
    with translation.override(translation.get_language_from_request(request)):
        return _private(render(request, "preference_center/refusal.html", status=status, context={
            "title": title, "message": message, "language": translation.get_language()}))


def _private(response: HttpResponse) -> HttpResponse:
    # The URL is a credential: keep it out of caches and of the Referer of anything the page loads.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
