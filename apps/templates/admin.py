"""Templates in the console: their version history, and a preview of any version with sample data."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.exceptions import ApplicationError
from apps.templates.models import Template, TemplateVersion
from apps.templates.rendering import TemplateRenderError
from apps.templates.services import template_version_preview


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("version", "locale", "channels", "created_at", "preview")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # versions are immutable; new ones come through the API

    @admin.display(description="")
    def preview(self, version):
        url = reverse("admin:notification_templates_template_preview", args=[version.template_id])
        return format_html('<a href="{}?version={}">Preview</a>', url, version.version)


class PreviewForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int)
    data = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "cols": 80}), initial="{}",
                           help_text="The notification's data, as JSON: what {{ name }} and the rest read.")

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(v.version, str(v)) for v in versions]

    def clean_data(self) -> dict:
        try:
            data = json.loads(self.cleaned_data["data"] or "{}")
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise forms.ValidationError("A JSON object, e.g. {\"name\": \"Ada\"}.")
        return data


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "project", "created_at")
    list_filter = ("project",)
    list_select_related = ("project",)
    search_fields = ("key",)
    inlines = [TemplateVersionInline]

    def get_urls(self):
        preview = path("<int:template_id>/preview/", self.admin_site.admin_view(self.preview_view),
                       name="notification_templates_template_preview")
        return [preview, *super().get_urls()]

    def preview_view(self, request, template_id: int):
        template = get_object_or_404(Template.objects.select_related("project"), pk=template_id)
        # Rendering a template with data of one's choosing is reading it: staff alone is not enough.
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        versions = list(template.versions.order_by("-version"))
        form = PreviewForm(request.GET or None, versions=versions,
                           initial={"version": versions[0].version if versions else None})
        rendered, error = None, ""
        if form.is_bound and form.is_valid():
            version = next(v for v in versions if v.version == form.cleaned_data["version"])
            try:
                rendered = template_version_preview(version=version, data=form.cleaned_data["data"])
            except TemplateRenderError as exc:
                error = f"{exc.path}: {exc}"
            except ApplicationError as exc:  # no render process free right now
                error = exc.message
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Preview of {template.key}",
            "template_obj": template, "form": form, "rendered": rendered, "error": error,
        }
        return TemplateResponse(request, "admin/templates/template/preview.html", context)
