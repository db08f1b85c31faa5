"""An audience broadcast pays its key's rate per user as it fans out."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0012_status_webhooks'),
        ('projects', '0004_api_key_last_used'),
    ]

    operations = [
        migrations.AddField(
            model_name='broadcast',
            name='api_key',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='projects.apikey'),
        ),
    ]
