"""Mail about a model's events: the Airflow notifier and its callbacks (the message itself is composed in
mlops.notifications)."""
