from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0004_delivery_hold_reason'),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='cancel_requested_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
