from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.api import not_found_view
from apps.core.metrics import metrics_view
from apps.inbox.pages import inbox_demo, inbox_widget_script
from apps.notifications.admin.dashboard import dashboard_view
from apps.preference_center.views import preferences_page
from apps.users.api.unsubscribe import unsubscribe_view
from notifier import health

api_v1 = [
    # First: Django tries the patterns in order, and the single POST is the most frequent request.
    # No other app's path starts as these do (notifications, broadcasts, providers), so the order
    # changes no match.
    path("", include("apps.notifications.api.urls")),  # with the providers' status callbacks (Twilio)
    path("", include("apps.projects.api.urls")),
    path("", include("apps.users.api.urls")),
    path("", include("apps.erasure.api.urls")),  # /users/{id}: the users app's views, with erasure
    path("", include("apps.templates.api.urls")),
    path("", include("apps.inbox.api.urls")),
    path("", include("apps.preference_center.urls")),
    path("", include("apps.workflows.api.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    # Any other /api/v1/ path (an id the path converters refuse, a typo) gets the JSON error envelope
    # with DEBUG on too, where Django would answer its HTML debug page instead of handler404.
    re_path(r"^api/v1/", not_found_view),
    # The link of an email's List-Unsubscribe header (RFC 8058): a page for people and mail clients,
    # not an API operation, so outside /api/v1/ and without its authentication.
    path("unsubscribe/<str:token>", unsubscribe_view, name="unsubscribe"),
    # What end users see, served to them (or to the product's pages embedding the widget) directly:
    # the page behind a signed link (apps/users/preference_links.py), and the inbox widget's script.
    path("preferences/<str:token>", preferences_page, name="preferences-page"),
    path("inbox/widget.js", inbox_widget_script, name="inbox-widget"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    # The operators' dashboard, behind the admin's login (staff only), linked from the admin's index.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages that name no icon (the console's pages name it).
    path("favicon.ico", RedirectView.as_view(url=static("console/favicon.svg")), name="favicon"),
]

if settings.NOTIFIER_INBOX_DEMO:  # `make run` only (the dev settings): the widget with the demo user
    urlpatterns.append(path("inbox/demo/", inbox_demo, name="inbox-demo"))

handler400 = "apps.core.api.bad_request_view"
handler403 = "apps.core.api.permission_denied_view"
handler404 = "apps.core.api.not_found_view"
handler500 = "apps.core.api.server_error_view"
