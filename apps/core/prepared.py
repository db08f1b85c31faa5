"""A cursor for a hot statement of fixed text: prepared where the database backend can.

On PostgreSQL (notifier/postgresql, `prepared_cursor`) its parameters are sent apart from the
text, and psycopg prepares the statement once a connection has sent it NOTIFIER_DB_PREPARE_THRESHOLD
times: PostgreSQL then skips parsing and planning it, which for the statements sent this way cost
more than running them (docs/performance.md). A statement whose text changes with its arguments
(an `IN` list of as many placeholders as values) gains nothing; send its values as one array.
Elsewhere (SQLite) it is the connection's own cursor.
"""


def prepared_cursor(connection):
    make = getattr(connection, "prepared_cursor", None)
    return make() if make is not None else connection.cursor()
