"""The API's URLconf: the single POST's include comes first, which is safe only while no other
app's path starts as its paths do (Django takes the first pattern that matches)."""

from django.urls import URLResolver, get_resolver, resolve


def api_includes() -> list[URLResolver]:
    api = next(pattern for pattern in get_resolver().url_patterns if str(pattern.pattern) == "api/v1/")
    return [include for include in api.url_patterns if isinstance(include, URLResolver)]


def first_segments(include: URLResolver) -> set[str]:
    return {str(pattern.pattern).split("/")[0] for pattern in include.url_patterns}


def test_the_notifications_include_is_first_and_shares_no_path_with_another():
    first, *others = api_includes()

    assert first.urlconf_module.__name__ == "apps.notifications.api.urls"
    assert first_segments(first) == {"notifications", "broadcasts", "providers"}
    for other in others:
        assert not first_segments(first) & first_segments(other), other.urlconf_module.__name__


def test_every_api_path_resolves_to_its_own_apps_view():
    assert resolve("/api/v1/notifications").url_name == "notification-list"
    assert resolve("/api/v1/users/ada").func.__module__.startswith("apps.erasure")
    assert resolve("/api/v1/templates/welcome").url_name
    assert resolve("/api/v1/project").func.__module__.startswith("apps.projects")
    assert resolve("/api/v1/inbox").func.__module__.startswith("apps.inbox")
