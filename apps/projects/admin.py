"""Projects and their API keys in the console. A key is created here with its value shown once
(only its hash is stored), revoked after a confirmation, and listed with when it was last used."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from apps.core.console import badge, confirm_action
from apps.projects.models import ApiKey, Project
from apps.projects.policy import critical_categories_clean, frequency_caps_clean
from apps.projects.services import (
    api_key_create,
    api_keys_revoke,
    project_create,
    project_fields_errors,
    project_update,
)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # through "Add API key", which shows the key once


class ProjectForm(forms.ModelForm):
    """The same rules as the API's: for the policy fields (apps/projects/policy.py), and for the
    addresses the workers will post to (apps/projects/services.py). The webhook secret is never
    shown: a new one is typed in, and rotates (the replaced one signs too for a while)."""

    new_webhook_secret = forms.CharField(
        required=False, max_length=200, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="Blank keeps the current secret. A new one rotates: the replaced secret goes on signing beside "
                  "it until the time below (NOTIFIER_WEBHOOK_SECRET_ROTATION_HOURS), while receivers switch.",
    )

    class Meta:
        model = Project
        fields = ("name", "default_locale", "webhook_url", "status_webhook_url", "api_rate_limit",
                  "critical_categories", "frequency_caps")
        help_texts = {
            "critical_categories": 'A JSON list, e.g. ["security", "billing"]: preferences cannot turn these off.',
            "frequency_caps": 'A JSON list, e.g. [{"category": "marketing", "limit": 3, "window": "1d", '
                              '"over_cap": "defer"}]; "*" caps all categories.',
        }

    def clean_critical_categories(self):
        try:
            return critical_categories_clean(self.cleaned_data["critical_categories"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    def clean_frequency_caps(self):
        try:
            return frequency_caps_clean(self.cleaned_data["frequency_caps"])
        except ValueError as exc:
            raise ValidationError(str(exc.args[0])) from exc

    def clean(self):
        cleaned_data = super().clean()
        changed = self.project_fields()
        # self.instance still has the stored values here: the form copies its own in after clean().
        for field, errors in project_fields_errors(project=self.instance, fields=changed).items():
            self.add_error(field, errors)
        return cleaned_data

    def project_fields(self) -> dict:
        """The project's fields this form changes, by model field name."""
        fields = {field: self.cleaned_data[field] for field in self.changed_data
                  if field in self.cleaned_data and field != "new_webhook_secret"}
        if self.cleaned_data.get("new_webhook_secret"):
            fields["webhook_secret"] = self.cleaned_data["new_webhook_secret"]
        return fields


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = ("name", "default_locale", "webhook_url", "api_rate_limit", "created_at", "new_key")
    search_fields = ("name",)
    readonly_fields = ("webhook_secret_previous_until",)
    inlines = [ApiKeyInline]

    def save_model(self, request, obj, form, change):
        """Through the projects' services, so the audit log records who changed what."""
        fields = form.project_fields()
        if change:
            project_update(project=Project.objects.get(pk=obj.pk), actor=request.user, **fields)
        else:
            fields = {**{field: form.cleaned_data[field] for field in ProjectForm.Meta.fields}, **fields}
            created = project_create(actor=request.user, **fields)
            # The admin goes on with its own instance (its log entry, the redirect to the new row).
            obj.pk, obj.created_at, obj._state.adding = created.pk, created.created_at, False
        if "critical_categories" in form.changed_data:
            self._warn_of_unsubscribes(request, obj, newly=set(form.cleaned_data.get("critical_categories") or []) - set(
                form.initial.get("critical_categories") or []))

    def _warn_of_unsubscribes(self, request, project, *, newly: set[str]) -> None:
        """An unsubscribe through an email's link outlives a critical marking (docs/api.md): the
        operator should know that the category will not reach those users."""
        if not newly:
            return
        counts = dict(project.unsubscribes.filter(category__in=newly).values("category")
                      .annotate(users=Count("recipient", distinct=True)).values_list("category", "users"))
        for category, users in sorted(counts.items()):
            self.message_user(request, f"{users} user{pluralize(users)} unsubscribed from {category!r} through an "
                              "email's link: marked critical, it still will not reach them by email (an unsubscribe "
                              "is kept).", messages.WARNING)

    @admin.display(description="")
    def new_key(self, project):
        return format_html('<a href="{}?project={}">Add API key</a>', reverse("admin:projects_apikey_add"), project.pk)


class ApiKeyCreateForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.order_by("name"))
    name = forms.CharField(max_length=200, required=False, help_text="A label to recognise the key by, e.g. `shop-prod`.")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "project", "created_at", "last_used_at", "state")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "project")
    list_select_related = ("project",)
    search_fields = ("=prefix", "name", "project__name")
    readonly_fields = ("project", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    exclude = ("key_hash",)
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, api_key):
        return badge("revoked", "failed") if api_key.revoked_at else badge("active", "sent")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, not deleted: the list keeps when each key was revoked

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def add_view(self, request, form_url="", extra_context=None):
        """A form for project and name; the answer shows the new key, once, and is never cached."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiKeyCreateForm(request.POST or None, initial={"project": request.GET.get("project")})
        raw_key = api_key = None
        if request.method == "POST" and form.is_valid():
            api_key, raw_key = api_key_create(project_name=form.cleaned_data["project"].name,
                                              name=form.cleaned_data["name"], actor=request.user)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": "Add API key",
            "form": form, "api_key": api_key, "raw_key": raw_key,
        }
        response = TemplateResponse(request, "admin/projects/apikey/create.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke: refuse the keys from their next request on", permissions=["change"])
    def revoke(self, request, queryset):
        active = queryset.filter(revoked_at__isnull=True)
        count = active.count()

        def perform():
            revoked = api_keys_revoke(api_key_ids=list(active.values_list("pk", flat=True)), actor=request.user)
            self.message_user(request, f"Revoked {len(revoked)} API key{'' if len(revoked) == 1 else 's'}.",
                              messages.SUCCESS)

        return confirm_action(
            self, request, queryset, action="revoke", title="Revoke",
            summary=f"Revoke {count} API key{'' if count == 1 else 's'}: every request with {'it' if count == 1 else 'them'} "
                    "gets 401 from now on. This cannot be undone; the product needs a new key.",
            warning="" if count == queryset.count() else "Keys already revoked are left as they are.",
            perform=perform,
        )
