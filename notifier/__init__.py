# Load the Celery app whenever Django starts, so tasks publish through it (cookiecutter-django's way).
from celery_app import app as celery_app

__all__ = ("celery_app",)
