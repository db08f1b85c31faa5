FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/prod.txt
COPY . .
# prod refuses a short secret; this one lives only for the collectstatic run.
RUN DJANGO_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))') DJANGO_ALLOWED_HOSTS=* DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    CELERY_BROKER_URL=memory:// DJANGO_SETTINGS_MODULE=notifier.settings.prod python manage.py collectstatic --noinput
# The metrics folder exists in the image so that its volume starts owned by the app's user.
RUN mkdir -p var/metrics && useradd --create-home notifier && chown -R notifier /app
USER notifier
