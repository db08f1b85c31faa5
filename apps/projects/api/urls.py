from django.urls import path

from apps.projects.api.views import ProjectApi

urlpatterns = [path("project", ProjectApi.as_view(), name="project")]
