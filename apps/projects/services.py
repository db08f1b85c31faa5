import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.egress import egress_url_error
from apps.core.exceptions import ApplicationError
from apps.projects.key_cache import api_key_cache_clear
from apps.projects.models import ApiKey, Project

API_KEY_PREFIX = "ntf_"


def api_key_hash(raw_key: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: nothing to brute-force as with passwords.
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, project_name: str, name: str = "", actor=None, actor_label: str = "") -> tuple[ApiKey, str]:
    """Create a key for the project (creating the project if new); return it with the raw key.

    The raw key exists only in this return value: store it now, it cannot be recovered. The
    operator who asked (`actor`, or `actor_label` for a command) goes to the audit log.
    """
    project, _ = Project.objects.get_or_create(name=project_name)
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        project=project, name=name, prefix=raw_key[: len(API_KEY_PREFIX) + 6], key_hash=api_key_hash(raw_key)
    )
    audit_record(action="api_key.create", target="projects.apikey", count=1, actor=actor, actor_label=actor_label,
                 ids=[api_key.pk], project=project.name, prefix=api_key.prefix)
    return api_key, raw_key


@transaction.atomic
def api_keys_revoke(*, api_key_ids, actor=None, actor_label: str = "") -> list[ApiKey]:
    """Revoke the keys among the ids that are not revoked yet; return those. A revoked key is
    refused (401) from its next request on; it stays listed, with when it was revoked."""
    keys = list(ApiKey.objects.select_for_update().select_related("project")
                .filter(pk__in=list(api_key_ids), revoked_at__isnull=True).order_by("pk"))
    now = timezone.now()
    ApiKey.objects.filter(pk__in=[key.pk for key in keys]).update(revoked_at=now)
    for key in keys:
        key.revoked_at = now
    api_key_cache_clear()  # an UPDATE sends no post_save: refused in this process from now on
    audit_record(action="api_key.revoke", target="projects.apikey", count=len(keys), actor=actor,
                 actor_label=actor_label, ids=[key.pk for key in keys],
                 prefixes=[f"{key.prefix} ({key.project.name})" for key in keys])
    return keys


# Addresses a tenant sets and the workers then send to: both must pass the egress rule.
_OUTBOUND_URL_FIELDS = ("webhook_url", "status_webhook_url")
# Fields whose values never go to the audit log: an entry says that they changed, not to what.
_SECRET_FIELDS = frozenset({"webhook_secret", "webhook_secret_previous"})


def project_fields_errors(*, project: Project, fields: dict) -> dict[str, list[str]]:
    """What is wrong with setting `fields` on the project, by field name (empty when nothing).
    An outbound URL must lead to allowed addresses only (this resolves its host)."""
    errors = {
        field: [error] for field in _OUTBOUND_URL_FIELDS if fields.get(field) and (error := egress_url_error(fields[field]))
    }
    # Status webhooks are signed with the webhook secret: a URL without one would only collect
    # events that fail (`webhook_secret_missing`) until someone noticed.
    if not errors and fields.get("status_webhook_url", project.status_webhook_url) and not fields.get(
            "webhook_secret", project.webhook_secret):
        errors["status_webhook_url"] = ["Set webhook_secret as well: status webhooks are signed with it."]
    return errors


@transaction.atomic
def project_create(*, name: str, actor=None, actor_label: str = "", **fields) -> Project:
    """Create a project (from the console); the audit log records who, with its settings."""
    if errors := project_fields_errors(project=Project(name=name), fields=fields):
        raise ApplicationError("invalid", "The request has invalid fields.", details=errors, status_code=400)
    project = Project.objects.create(name=name, **fields)
    audit_record(action="project.create", target="projects.project", count=1, actor=actor, actor_label=actor_label,
                 ids=[project.pk], project=project.name,
                 changes=_changes_described({field: ("", value) for field, value in fields.items() if value}))
    return project


@transaction.atomic
def project_update(*, project: Project, actor=None, actor_label: str = "", **fields) -> Project:
    """Set the given fields, and record in the audit log who changed which (old -> new; for a
    secret, only that it changed). `actor` is the console's user, `actor_label` names an API key
    or a command. Nothing is recorded when no value changes.

    A new `webhook_secret` rotates: the one it replaces goes on signing beside it (a second
    signature) for NOTIFIER_WEBHOOK_SECRET_ROTATION_HOURS, so receivers move to the new one
    without refusing a request. Only two are ever active: a secret replaced mid-rotation is
    dropped. An empty secret ends signing, and the rotation with it.
    """
    if errors := project_fields_errors(project=project, fields=fields):
        raise ApplicationError("invalid", "The request has invalid fields.", details=errors, status_code=400)
    changed = {field: (getattr(project, field), value) for field, value in fields.items()
               if getattr(project, field) != value}
    if "webhook_secret" in changed:
        replaced, new = changed["webhook_secret"]
        fields["webhook_secret_previous"] = replaced if replaced and new else ""
        fields["webhook_secret_previous_until"] = (
            timezone.now() + timedelta(hours=settings.NOTIFIER_WEBHOOK_SECRET_ROTATION_HOURS) if replaced and new else None)
    for field, value in fields.items():
        setattr(project, field, value)
    project.save(update_fields=list(fields))
    if changed:
        audit_record(action="project.update", target="projects.project", count=1, actor=actor,
                     actor_label=actor_label, ids=[project.pk], project=project.name, changes=_changes_described(changed))
    return project


def _changes_described(changed: dict) -> dict:
    return {field: "(changed)" if field in _SECRET_FIELDS else {"old": old, "new": new}
            for field, (old, new) in changed.items()}
