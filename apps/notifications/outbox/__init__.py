"""What is written to the database and then published to the broker after commit: deliveries
onto their channel queues, and status events for the status webhooks."""
