"""The fleet page and its JSON API: a FastAPI app mounted by the plugin at /mlops, behind Airflow's auth
manager. Imported only by the API server (plugin.py builds the app on its first request)."""
