import time

import pytest

pytestmark = pytest.mark.django_db

WELCOME = {"channels": {"email": {"subject": "Hi {{ name }}", "text": "Welcome, {{ name }}."},
                        "sms": {"text": "Welcome {{ name }}"}}}


def test_each_put_adds_an_immutable_version(api):
    first = api.put("/api/v1/templates/welcome", WELCOME, format="json")
    second = api.put("/api/v1/templates/welcome", {"channels": {"sms": {"text": "v2"}}}, format="json")

    assert (first.status_code, first.json()["version"]) == (201, 1)
    assert (second.status_code, second.json()["version"]) == (201, 2)
    body = api.get("/api/v1/templates/welcome").json()
    assert [(v["version"], v["locale"]) for v in body["versions"]] == [(2, "en")]


def test_get_lists_the_newest_version_of_each_locale(api):
    api.put("/api/v1/templates/welcome", WELCOME, format="json")
    api.put("/api/v1/templates/welcome", {**WELCOME, "locale": "fr"}, format="json")
    versions = api.get("/api/v1/templates/welcome").json()["versions"]
    assert sorted((v["locale"], v["version"]) for v in versions) == [("en", 1), ("fr", 2)]


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ({"channels": {"email": {"subject": "{% if %}", "text": "x"}}}, 422, "invalid_template", "channels.email.subject"),
        ({"channels": {"email": {"subject": "{{ name|nosuchfilter }}", "text": "x"}}}, 422, "invalid_template",
         "channels.email.subject"),
        ({"channels": {"email": {"text": "no subject"}}}, 400, "invalid", "channels"),
        ({"channels": {"fax": {"text": "x"}}}, 400, "invalid", "channels"),
        ({"channels": {}}, 400, "invalid", "channels"),
        ({"channels": {"sms": {"text": "{% load static %}{% static 'x' %}"}}}, 422, "invalid_template", "channels.sms.text"),
    ],
)
def test_bad_templates_are_refused_at_the_door(api, body, status, code, detail):
    response = api.put("/api/v1/templates/welcome", body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert detail in response.json()["error"]["details"]


def test_preview_renders_every_channel_with_the_data(api):
    api.put("/api/v1/templates/welcome", {"channels": {
        "email": {"subject": "Hi {{ name }}", "text": "Hello {{ name }}", "html": "<b>{{ name }}</b>"},
        "webhook": {"event": "welcome", "user": {"name": "{{ name }}"}}}}, format="json")

    body = api.post("/api/v1/templates/welcome/preview", {"data": {"name": "<Ada>"}}, format="json").json()

    assert body["channels"]["email"] == {"subject": "Hi <Ada>", "text": "Hello <Ada>", "html": "<b>&lt;Ada&gt;</b>"}
    assert body["channels"]["webhook"] == {"event": "welcome", "user": {"name": "<Ada>"}}


def test_unknown_template_is_404(api):
    assert api.get("/api/v1/templates/nope").status_code == 404
    assert api.post("/api/v1/templates/nope/preview", {}, format="json").status_code == 404


class TestSandbox:
    """Templates are written by API key holders and rendered on our servers: what they may do is bounded."""

    @pytest.mark.parametrize(
        "source",
        [
            "{{ name|ljust:'300000000' }}",  # one preview allocated 300 MB
            "{{ name|rjust:'300000000' }}",
            "{{ name|center:'300000000' }}",
            "{{ name|stringformat:'300000000s' }}",
            "{% lorem 100000000 w %}",
            "{% debug %}",  # dumps the context
            "{% url 'admin:index' %}",
            "{% csrf_token %}",
            "{% querystring %}",
            "{% include 'other' %}",
            "{% extends 'base' %}",
            "{% block body %}{% endblock %}",
            "{% if 1 %}" * 5000 + "{% endif %}" * 5000,  # deeper than the parser can recurse
        ],
    )
    def test_a_filter_or_tag_not_allowed_is_refused_when_saved(self, api, source):
        started = time.monotonic()
        response = api.put("/api/v1/templates/welcome",
                           {"channels": {"sms": {"text": "ok"}, "webhook": {"event": {"name": source}}}}, format="json")

        assert response.status_code == 422, response.content
        assert response.json()["error"]["code"] == "invalid_template"
        assert list(response.json()["error"]["details"]) == ["channels.webhook.event.name"]
        assert time.monotonic() - started < 5

    def test_everyday_filters_and_tags_still_render(self, api):
        source = ("{% for item in items %}{{ forloop.counter }}. {{ item.name|title }}: "
                  "{{ item.price|floatformat:2 }}{% if not forloop.last %}, {% endif %}{% endfor %}"
                  " | {{ tags|join:', ' }} | {{ missing|default:'none' }} | {{ n }} item{{ n|pluralize }}")
        api.put("/api/v1/templates/receipt", {"channels": {"sms": {"text": source}}}, format="json")

        data = {"items": [{"name": "tea", "price": 3}, {"name": "cake", "price": 4.255}], "tags": ["a", "b"], "n": 2}
        body = api.post("/api/v1/templates/receipt/preview", {"data": data}, format="json").json()

        assert body["channels"]["sms"]["text"] == "1. Tea: 3.00, 2. Cake: 4.26 | a, b | none | 2 items"

    @pytest.mark.parametrize(
        ("source", "data"),
        [
            ("{{ n|divisibleby:d }}", {"n": 4, "d": 0}),  # ZeroDivisionError
            ("{{ name|wordwrap:width }}", {"name": "Ada", "width": "wide"}),  # ValueError
            ("{{ price|floatformat:places }}", {"price": 1.5, "places": "999999"}),  # a million digits
        ],
    )
    def test_a_filter_failing_on_the_data_is_a_422_naming_the_part(self, api, source, data):
        api.put("/api/v1/templates/welcome", {"channels": {"sms": {"text": "ok"}, "email": {"subject": "Hi", "text": source}}},
                format="json")

        response = api.post("/api/v1/templates/welcome/preview", {"data": data}, format="json")

        assert response.status_code == 422, response.content
        assert response.json()["error"]["code"] == "template_render_error"
        assert list(response.json()["error"]["details"]) == ["channels.email.text"]

    @pytest.mark.parametrize(
        ("source", "data"),
        [
            # 100**3 copies of a 1 KB value: 1 GB
            ("{% for a in l %}{% for b in l %}{% for c in l %}{{ big }}{% endfor %}{% endfor %}{% endfor %}",
             {"l": list(range(100)), "big": "x" * 1000}),
            # one 100 KB separator 300 times: 30 MB (the request itself stays under the body limit)
            ("{{ l|join:big }}", {"l": list(range(300)), "big": "x" * 100_000}),
            # a value written many times over, no loop needed
            ("{{ big }}" * 100, {"big": "x" * 100_000}),  # 10 MB
        ],
    )
    def test_output_past_the_size_cap_is_refused_quickly(self, api, source, data):
        api.put("/api/v1/templates/welcome", {"channels": {"sms": {"text": source}}}, format="json")

        started = time.monotonic()
        response = api.post("/api/v1/templates/welcome/preview", {"data": data}, format="json")

        assert response.status_code == 422, response.content
        assert response.json()["error"]["code"] == "template_render_error"
        assert "larger than 1048576 bytes" in response.json()["error"]["details"]["channels.sms.text"]
        assert time.monotonic() - started < 5

    def test_the_size_cap_counts_bytes_and_every_part_of_a_channel(self, api, settings):
        settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES = 1000
        api.put("/api/v1/templates/welcome", {"channels": {"webhook": {"a": "{{ s }}", "b": ["{{ s }}"]}}}, format="json")

        def preview(s: str):
            return api.post("/api/v1/templates/welcome/preview", {"data": {"s": s}}, format="json")

        assert preview("x" * 400).status_code == 200
        assert list(preview("x" * 600).json()["error"]["details"]) == ["channels.webhook.b.0"]
        assert list(preview("é" * 300).json()["error"]["details"]) == ["channels.webhook.b.0"]  # 1200 bytes

    def test_rendering_past_the_time_cap_is_refused(self, api, settings):
        settings.NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS = 0.2
        # A billion iterations of an empty body: no output, all time.
        source = "{% for a in l %}{% for b in l %}{% for c in l %}{% endfor %}{% endfor %}{% endfor %}"
        api.put("/api/v1/templates/welcome", {"channels": {"sms": {"text": source}}}, format="json")

        started = time.monotonic()
        response = api.post("/api/v1/templates/welcome/preview", {"data": {"l": list(range(1000))}}, format="json")

        assert response.status_code == 422, response.content
        assert "longer than 0.2 seconds" in response.json()["error"]["details"]["channels.sms.text"]
        assert time.monotonic() - started < 5

    @pytest.mark.parametrize(
        ("channels", "field"),
        [
            ('{"webhook": {"event": "a\\u0000b"}}', "webhook"),
            ('{"webhook": {"a\\u0000": "x"}}', "webhook"),
            ('{"push": {"title": "t", "body": "b", "data": {"k\\u0000": "v"}}}', "push"),
        ],
    )
    def test_parts_postgresql_cannot_store_are_a_400(self, api, channels, field):
        response = api.put("/api/v1/templates/welcome", '{"channels": ' + channels + "}", content_type="application/json")

        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "invalid"
        assert field in response.json()["error"]["details"]["channels"]

    def test_preview_data_with_nul_is_a_400(self, api):
        api.put("/api/v1/templates/welcome", WELCOME, format="json")
        response = api.post("/api/v1/templates/welcome/preview", '{"data": {"name": "\\u0000"}}',
                            content_type="application/json")

        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "invalid"
        assert "data" in response.json()["error"]["details"]
