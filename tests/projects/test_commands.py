import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.projects.models import ApiKey

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_once_and_stores_only_its_hash(capsys):
    call_command("create_api_key", "shop", "--name", "backend")
    raw_key = capsys.readouterr().out.strip()

    api_key = ApiKey.objects.get(project__name="shop")
    assert api_key.name == "backend"
    assert raw_key not in (api_key.key_hash, api_key.prefix) and raw_key.startswith(api_key.prefix)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert client.get("/api/v1/project").json()["name"] == "shop"


def test_a_second_key_for_the_same_project_reuses_the_project(capsys):
    call_command("create_api_key", "shop")
    call_command("create_api_key", "shop")
    assert ApiKey.objects.filter(project__name="shop").count() == 2
