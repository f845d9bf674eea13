"""Development tools (the laptop demo and what it needs from Airflow): run from a checkout, never shipped in
an image (see .dockerignore)."""
