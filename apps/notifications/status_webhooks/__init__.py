"""Posting the status events of the outbox to each project's status_webhook_url, their sweep and replay."""
