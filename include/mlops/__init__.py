"""The domain core of the platform: pure Python, importable without Airflow.

Everything here runs the same in an Airflow worker, a local subprocess or a training pod.
"""

__version__ = "0.1.0"
