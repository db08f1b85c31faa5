"""One unsubscribe record per user, category and channel: repeats of a link's POST added a row each."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recipients', '0005_console_search_indexes'),
    ]

    operations = [
        # Keep the first of each repeat, the request that did unsubscribe.
        migrations.RunSQL(
            sql="""
                DELETE FROM recipients_unsubscribe AS later USING recipients_unsubscribe AS first
                WHERE later.recipient_id = first.recipient_id AND later.category = first.category
                  AND later.channel = first.channel AND later.id > first.id
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AddConstraint(
            model_name='unsubscribe',
            constraint=models.UniqueConstraint(fields=('recipient', 'category', 'channel'), name='unsubscribe_once'),
        ),
    ]
