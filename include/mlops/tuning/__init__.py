"""Hyperparameter sweeps: a study per sweep in Optuna's RDB storage, asked and told by Airflow tasks
(`study.py`), trials run by the training entrypoint (`trial.py`, pruned with `pruning.py`), and their
record in MLflow (`sweep.py`: one parent run per sweep, a child run per trial; `history.py`: its plot).

Ask/tell has no heartbeat: the platform marks a trial failed when its task fails or is killed, and a
round's tell task fails every trial of its round that its task left running."""
