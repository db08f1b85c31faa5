"""The console reads as Notifier's: its name in the header and title, the pipeline's pages
listed first with the libraries' tables gathered under "System" (and the raw ones left out), and
an icon, so a browser asks for nothing that answers 404."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def sections(html: str) -> dict[str, list[str]]:
    """Each section of an app list (index or sidebar) with the names of the pages it links."""
    found = {}
    for module in re.findall(r'<div class="app-[^"]*module.*?</table>', html, re.S):
        [caption] = re.findall(r"<caption>\s*<a[^>]*>([^<]+)</a>", module)
        found[caption] = re.findall(r'<th scope="row"[^>]*>\s*<a href="[^"]*"[^>]*>([^<]+)</a>', module)
    return found


def sidebar(html: str) -> str:
    return re.search(r'<nav class="sticky" id="nav-sidebar".*?</nav>', html, re.S).group(0)


def test_every_page_says_notifier_not_django(admin_client):
    for url in (reverse("admin:index"), reverse("admin:notifications_delivery_changelist")):
        html = admin_client.get(url).content.decode()
        assert re.search(r'id="site-name"><a href="[^"]*">Notifier</a>', html)
        assert re.search(r"<title>[^<]*\| Notifier</title>", html)
        assert "Django administration" not in html and "Django site admin" not in html


def test_the_index_lists_the_service_first_and_the_libraries_tables_under_system(admin_client):
    listed = sections(admin_client.get(reverse("admin:index")).content.decode())

    assert list(listed)[-1] == "System"
    assert listed["System"] == ["Access attempts (Axes)", "Task results (Celery Results)"]
    assert "Axes" not in listed and "Celery Results" not in listed
    assert "Dead letters" in listed["Notifications and deliveries"]
    for raw in ("Group results", "Access logs", "Access failures"):
        assert not any(raw in name for names in listed.values() for name in names)


def test_the_sidebar_groups_the_same_way_and_left_out_pages_still_open(admin_client):
    html = admin_client.get(reverse("admin:notifications_delivery_changelist")).content.decode()

    listed = sections(sidebar(html))
    assert list(listed)[-1] == "System"
    assert listed["System"] == ["Access attempts (Axes)", "Task results (Celery Results)"]
    # Only unlisted: an operator who knows the address still reads them.
    assert admin_client.get(reverse("admin:axes_accesslog_changelist")).status_code == 200


def test_the_console_names_an_icon_that_is_served(admin_client, client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    [icon] = re.findall(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', html)

    served = client.get(icon)
    assert served.status_code == 200 and served["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(served.streaming_content if served.streaming else [served.content])
    # The login page too: a browser's first look at the console.
    assert icon in client.get(reverse("admin:login")).content.decode()


def test_a_browser_asking_for_favicon_ico_gets_the_icon(client):
    answered = client.get("/favicon.ico", follow=True)

    assert answered.status_code == 200 and answered["Content-Type"] == "image/svg+xml"
