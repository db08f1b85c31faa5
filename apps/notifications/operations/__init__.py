"""What operators act on and read: the dead-letter queue, the dashboard's numbers, and retention."""
