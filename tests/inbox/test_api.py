"""The inbox API as the user's browser calls it, with a token the product backend asked for."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from tests.inbox.factories import InboxMessageFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

INBOX_ENDPOINTS = [
    ("get", "/api/v1/inbox"),
    ("get", "/api/v1/inbox/unread-count"),
    ("post", "/api/v1/inbox/read-all"),
    ("post", "/api/v1/inbox/{id}/read"),
    ("post", "/api/v1/inbox/{id}/unread"),
    ("get", "/api/v1/inbox/stream"),
]


@pytest.fixture
def ada(project):
    return RecipientFactory(project=project, external_id="ada")


@pytest.fixture
def bob(project):
    return RecipientFactory(project=project, external_id="bob")


def token_for(api, external_id: str) -> str:
    response = api.post(f"/api/v1/users/{external_id}/token")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def inbox_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def call(client, method: str, path: str, message_id: int = 0):
    return getattr(client, method)(path.format(id=message_id))


def test_the_backend_gets_a_token_that_expires_after_the_configured_time(api, ada, settings):
    settings.NOTIFIER_INBOX_TOKEN_TTL_SECONDS = 600

    response = api.post("/api/v1/users/ada/token")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert 590 < (expires_at - datetime.now(UTC)).total_seconds() <= 600


def test_a_token_for_an_unknown_user_is_a_404(api, project):
    response = api.post("/api/v1/users/nobody/token")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_token_endpoint_needs_the_projects_api_key(api, ada):
    token = token_for(api, "ada")

    assert APIClient().post("/api/v1/users/ada/token").status_code == 401
    # A user token is no API key: it opens no server-to-server endpoint, not even for its own user.
    assert inbox_client(token).post("/api/v1/users/ada/token").status_code == 401
    assert inbox_client(token).get("/api/v1/users/ada").status_code == 401
    assert inbox_client(token).get("/api/v1/project").status_code == 401


@pytest.mark.parametrize(("method", "path"), INBOX_ENDPOINTS)
def test_an_api_key_or_no_credentials_does_not_open_an_inbox(api, ada, method, path):
    message = InboxMessageFactory(recipient=ada)

    for client in (api, APIClient()):
        response = call(client, method, path, message.id)
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), INBOX_ENDPOINTS)
def test_an_expired_or_forged_token_is_refused(api, ada, settings, method, path):
    message = InboxMessageFactory(recipient=ada)
    valid = token_for(api, "ada")
    settings.NOTIFIER_INBOX_TOKEN_TTL_SECONDS = -1
    expired = token_for(api, "ada")
    forged = valid[:-3] + ("abc" if not valid.endswith("abc") else "xyz")

    for token, code in ((expired, "authentication_failed"), (forged, "authentication_failed")):
        response = call(inbox_client(token), method, path, message.id)
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == code
    assert "expired" in call(inbox_client(expired), method, path, message.id).json()["error"]["message"]


def test_a_token_stops_working_when_its_user_is_deleted(api, ada):
    token = token_for(api, "ada")
    assert inbox_client(token).get("/api/v1/inbox").status_code == 200

    assert api.delete("/api/v1/users/ada").status_code == 204

    assert inbox_client(token).get("/api/v1/inbox").status_code == 401
    # A new user with the same id is another person: the old token does not open their inbox.
    api.put("/api/v1/users/ada", {"email": "new-ada@example.com"}, format="json")
    assert inbox_client(token).get("/api/v1/inbox").status_code == 401


def test_a_token_opens_only_its_own_users_inbox(api, ada, bob):
    adas = InboxMessageFactory(recipient=ada, title="for ada")
    InboxMessageFactory(recipient=bob, title="for bob")
    bob_client = inbox_client(token_for(api, "bob"))

    assert [m["title"] for m in bob_client.get("/api/v1/inbox").json()["results"]] == ["for bob"]
    assert bob_client.get("/api/v1/inbox/unread-count").json() == {"count": 1}
    # Ada's message is as unknown to Bob as one that does not exist.
    for action in ("read", "unread"):
        response = bob_client.post(f"/api/v1/inbox/{adas.id}/{action}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert bob_client.post("/api/v1/inbox/read-all").json() == {"updated": 1}
    adas.refresh_from_db()
    assert adas.read_at is None


def test_a_user_of_another_project_is_out_of_reach(api, ada):
    stranger = RecipientFactory(external_id="ada")  # same external id, another project
    InboxMessageFactory(recipient=stranger, title="not yours")

    assert inbox_client(token_for(api, "ada")).get("/api/v1/inbox").json()["results"] == []


def test_reading_and_unreading_messages_moves_the_unread_count(api, ada):
    _, second, _ = (InboxMessageFactory(recipient=ada) for _ in range(3))
    client = inbox_client(token_for(api, "ada"))
    assert client.get("/api/v1/inbox/unread-count").json() == {"count": 3}

    read = client.post(f"/api/v1/inbox/{second.id}/read").json()
    assert read["id"] == second.id and read["read"] is True and read["read_at"]
    assert client.get("/api/v1/inbox/unread-count").json() == {"count": 2}
    # Reading again keeps the time it was first read.
    assert client.post(f"/api/v1/inbox/{second.id}/read").json()["read_at"] == read["read_at"]

    unread = client.post(f"/api/v1/inbox/{second.id}/unread").json()
    assert unread["read"] is False and unread["read_at"] is None
    assert client.get("/api/v1/inbox/unread-count").json() == {"count": 3}

    assert client.post("/api/v1/inbox/read-all").json() == {"updated": 3}
    assert client.get("/api/v1/inbox/unread-count").json() == {"count": 0}
    assert client.post("/api/v1/inbox/read-all").json() == {"updated": 0}
    assert client.post("/api/v1/inbox/999999/read").status_code == 404


def test_the_inbox_lists_newest_first_in_pages_and_can_show_only_unread(api, ada):
    messages = [InboxMessageFactory(recipient=ada, title=f"m{n}") for n in range(5)]
    client = inbox_client(token_for(api, "ada"))
    client.post(f"/api/v1/inbox/{messages[3].id}/read")

    titles, url = [], "/api/v1/inbox?limit=2"
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 2
        titles += [m["title"] for m in page["results"]]
        url = page["next"]
    assert titles == ["m4", "m3", "m2", "m1", "m0"]

    unread = client.get("/api/v1/inbox?unread=true").json()["results"]
    assert [m["title"] for m in unread] == ["m4", "m2", "m1", "m0"]
    first = unread[0]
    assert set(first) == {"id", "title", "body", "url", "read", "read_at", "created_at"}

    response = client.get("/api/v1/inbox?unread=maybe")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"



def test_browsers_on_an_allowed_origin_may_call_the_inbox_and_nothing_else(settings, client):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = {"HTTP_ORIGIN": "https://app.example.com", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
                 "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization"}

    inbox = client.options("/api/v1/inbox", **preflight)
    assert inbox["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in inbox["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in client.options("/api/v1/notifications", **preflight)
    other_origin = {**preflight, "HTTP_ORIGIN": "https://evil.example.net"}
    assert "Access-Control-Allow-Origin" not in client.options("/api/v1/inbox", **other_origin)
