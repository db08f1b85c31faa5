"""The single POST's plain body is validated without DRF's walk, to the same fields DRF gives;
every other body, and every error, is DRF's."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from apps.notifications.api.serializers import NotificationInputSerializer, notification_input_validate

SERIALIZER = NotificationInputSerializer()

texts = st.one_of(
    st.sampled_from(["ada", "welcome", "user-1_2", " ada", "ada ", "", "a" * 100, "a" * 101, "a" * 200, "a" * 201,
                     "ada\x00", "ad\ud800a", "ada\n", "adé", "a b", "a.b", "\x1f", "ada\t"]),
    st.text(max_size=12),
    st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    st.fixed_dictionaries({"to": texts, "template": texts},
                          optional={"data": st.one_of(json_values, st.dictionaries(st.text(max_size=4), json_values)),
                                    "category": texts, "workflow": texts, "channels": st.just(["email"]),
                                    "priority": st.sampled_from(["low", "urgent"]), "extra": texts}),
    json_values,
)


def outcome(validate, body):
    try:
        return "valid", validate(body)
    except ValidationError as exc:
        return "invalid", exc.detail


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
@example({"to": "ada", "template": "welcome"})
@example({"to": "ada", "template": "welcome", "data": {"name": "Ada", "n": [1, {"x": None}]}})
@example({"to": "ada", "template": "welcome", "data": {"bad": "\x00"}})
@example({"to": "ada", "template": "welcome", "data": {"inf": float("inf")}})
@example({"to": "ada", "template": "welcome", "data": None})
@example({"to": "ada", "template": "wel come"})
def test_any_body_gets_what_drf_gives(body):
    assert outcome(lambda b: notification_input_validate(SERIALIZER, b), body) == outcome(SERIALIZER.run_validation, body)


@pytest.mark.parametrize("body", [
    {"to": "ada", "template": "welcome"},
    {"to": "user-42", "template": "order_shipped", "data": {"order": {"id": 7, "items": ["a"]}}},
])
def test_the_plain_body_skips_drfs_walk(body, monkeypatch):
    serializer = NotificationInputSerializer()
    monkeypatch.setattr(serializer, "run_validation", lambda data: pytest.fail("went through DRF"))

    fields = notification_input_validate(serializer, body)

    assert fields == NotificationInputSerializer().run_validation(body)
    assert fields["data"] is not body.get("data")  # a copy, as DRF's DictField makes


@pytest.mark.parametrize("body", [
    {"to": "ada", "template": "welcome", "category": "news"},
    {"to": " ada", "template": "welcome"},
    {"to": "adé", "template": "welcome"},
    {"to": 42, "template": "welcome"},
    {"to": "ada", "template": "welcome", "data": {"x": "\x00"}},
    ["not", "an", "object"],
])
def test_anything_else_goes_through_drf(body, monkeypatch):
    serializer = NotificationInputSerializer()
    walked = []
    monkeypatch.setattr(serializer, "run_validation", lambda data: walked.append(data) or {})

    notification_input_validate(serializer, body)

    assert walked == [body]
