"""Django's PostgreSQL backend, with the connection pool's health check made conditional (base.py)."""
