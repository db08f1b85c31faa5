"""The JSON-first negotiation answers as DRF's own would, and only skips the work where it may."""

import pytest
from django.http import Http404
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.core.negotiation import JsonFirstContentNegotiation

ACCEPT_HEADERS = [None, "*/*", "application/json", "", "text/html", "application/json; indent=4",
                  "application/*", "text/html, */*;q=0.1", "application/yaml"]
RENDERER_LISTS = [
    [JSONRenderer()],
    [JSONRenderer(), BrowsableAPIRenderer()],
    [OpenApiYamlRenderer(), OpenApiJsonRenderer()],  # the schema view's: YAML first
]


def negotiated(negotiation, renderers, accept, query=""):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get("/api/v1/notifications" + query, **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except NotAcceptable:
        return "406"
    except Http404:  # a ?format= no renderer has
        return "404"
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("renderers", RENDERER_LISTS, ids=lambda rs: "+".join(type(r).__name__ for r in rs))
@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api"])
def test_it_picks_what_drfs_negotiation_picks(renderers, accept, query):
    assert (negotiated(JsonFirstContentNegotiation(), renderers, accept, query)
            == negotiated(DefaultContentNegotiation(), renderers, accept, query))


def test_only_json_first_and_any_or_json_skip_drfs_walk(monkeypatch):
    walked = []
    monkeypatch.setattr(DefaultContentNegotiation, "select_renderer",
                        lambda self, request, renderers, format_suffix=None: walked.append(1) or (renderers[0], "x"))
    negotiation = JsonFirstContentNegotiation()

    for accept in (None, "*/*", "application/json"):
        negotiated(negotiation, [JSONRenderer()], accept)
    assert walked == []
    negotiated(negotiation, [JSONRenderer()], "text/html")
    negotiated(negotiation, [JSONRenderer()], "*/*", "?format=json")
    negotiated(negotiation, [OpenApiYamlRenderer(), OpenApiJsonRenderer()], "*/*")
    assert len(walked) == 3


@pytest.mark.django_db
def test_an_api_request_accepting_no_json_is_still_a_406_and_any_type_gets_json(api):
    refused = api.get("/api/v1/notifications", HTTP_ACCEPT="text/html")
    answered = api.get("/api/v1/notifications", HTTP_ACCEPT="*/*")

    assert refused.status_code == 406
    assert refused.json()["error"]["code"] == "not_acceptable"
    assert (answered.status_code, answered["Content-Type"]) == (200, "application/json")


@pytest.mark.parametrize("parsers", [[JSONParser()], [FormParser(), JSONParser()], [JSONParser(), FormParser()]],
                         ids=lambda ps: "+".join(type(p).__name__ for p in ps))
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                                          "application/x-www-form-urlencoded", "text/plain", ""])
def test_it_picks_the_parser_drfs_negotiation_picks(parsers, content_type):
    request = Request(APIRequestFactory().generic("POST", "/api/v1/notifications", b"{}", content_type=content_type))

    chosen = JsonFirstContentNegotiation().select_parser(request, parsers)

    assert chosen is DefaultContentNegotiation().select_parser(request, parsers)
