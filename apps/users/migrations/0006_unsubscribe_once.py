"""One unsubscribe record per user, category and channel: repeats of a link's POST added a row each."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recipients', '0005_console_search_indexes'),
    ]

    operations = [
        # Keep the first of each repeat, the request that did unsubscribe. Plain SQL both databases
        # speak: `make run`'s SQLite has no DELETE … USING.
        migrations.RunSQL(
            sql="""
                DELETE FROM recipients_unsubscribe WHERE id NOT IN (
                    SELECT MIN(id) FROM recipients_unsubscribe GROUP BY recipient_id, category, channel)
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AddConstraint(
            model_name='unsubscribe',
            constraint=models.UniqueConstraint(fields=('recipient', 'category', 'channel'), name='unsubscribe_once'),
        ),
    ]
