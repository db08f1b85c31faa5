"""The Celery application: `celery -A celery_app worker|beat|flower`.

Configuration comes from Django settings (the CELERY_* names), so web and workers share one source.
"""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")

app = Celery("notifier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def declare_dead_letter_queues(sender, **kwargs) -> None:
    # The channel queues name a dead-letter exchange; its queues must exist before the broker
    # dead-letters anything, or RabbitMQ drops it.
    from django.conf import settings

    with sender.app.connection_for_write() as connection:
        for queue in settings.NOTIFIER_DEAD_LETTER_QUEUES:
            queue(connection.default_channel).declare()
