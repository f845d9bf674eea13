"""What a model costs: the compute each training run used (pool, GPUs, node type, wall time, GPU-seconds) and an
estimate from the pool catalogue's prices; the same for the replicas that serve it.

Prices are per GPU-hour and per node-hour of a pool (`price_per_gpu_hour`, `price_per_node_hour` in
include/compute/pools.yaml). A pod pays for its GPUs and for the share of the node they take (the whole node on
a pool without GPUs). Estimates, not invoices: they say what a run roughly costs, so the fleet page can sum them
by model and by why the run happened, and a drift alarm can say what the retraining it asks for will cost.
A cache hit trains nothing and costs nothing; it says so.

Training usage is logged on the MLflow run (metrics `cost.*`, tags `mlops.cost.*`) and on the model version it
made; serving usage in the rollout records (mlops.serving.records).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mlops.compute import Catalogue, Pool

if TYPE_CHECKING:
    from mlops.settings import Settings

# MLflow names
GPU_SECONDS, WALL_SECONDS, ESTIMATE = "cost.gpu_seconds", "cost.wall_seconds", "cost.estimate"
POOL, NODE_TYPE, GPUS, CURRENCY, NOTE = ("mlops.cost.pool", "mlops.cost.node_type", "mlops.cost.gpus",
                                         "mlops.cost.currency", "mlops.cost.note")
RUN_TYPE = "mlops.airflow.run_type"  # scheduled | asset_triggered (drift) | backfill | manual
VERSION_COST = "mlops.cost"  # model version tag: JSON of the usage of the run that trained it
KINDS = {"scheduled": "scheduled", "asset_triggered": "drift-triggered", "backfill": "backfill", "manual": "manual"}


@dataclass(frozen=True)
class Usage:
    pool: str
    node_type: str
    gpus: int
    replicas: int
    wall_seconds: float
    gpu_seconds: float
    node_share: float  # of one node, per replica
    estimate: float
    currency: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def says(self) -> str:
        if self.note:
            return self.note
        gpu = f", {self.gpu_seconds / 3600:.2f} GPU-hours" if self.gpus else ""
        return (f"{self.wall_seconds / 60:.1f} min on {self.pool} ({self.node_type or 'node type not declared'})"
                f"{gpu}: about {self.estimate:.2f} {self.currency}")


def price(pool: Pool, gpus: int, seconds: float, replicas: int = 1) -> tuple[float, float]:
    """(estimate, node share per replica) of `replicas` pods with `gpus` GPUs each on `pool` for `seconds`."""
    share = min(1.0, gpus / pool.gpus_per_node) if pool.gpus_per_node else 1.0
    hours = max(seconds, 0.0) / 3600 * replicas
    return hours * (gpus * pool.price_per_gpu_hour + share * pool.price_per_node_hour), share


def usage(catalogue: Catalogue, pool_name: str, gpus: int, seconds: float, *, replicas: int = 1,
          cache_hit: bool = False) -> Usage:
    pool = catalogue.pools.get(pool_name)
    if pool is None:  # a pool removed from the catalogue since: the time is still worth recording
        return Usage(pool_name, "", gpus, replicas, round(seconds, 3), round(gpus * seconds * replicas, 3), 1.0,
                     0.0, catalogue.currency, f"pool '{pool_name}' is not in the catalogue: no price")
    if cache_hit:
        return Usage(pool_name, pool.node_type, gpus, replicas, round(seconds, 3), 0.0, 0.0, 0.0, catalogue.currency,
                     "cache hit: the model version was reused, nothing was trained, nothing spent")
    estimate, share = price(pool, gpus, seconds, replicas)
    return Usage(pool_name, pool.node_type, gpus, replicas, round(seconds, 3), round(gpus * seconds * replicas, 3),
                 round(share, 4), round(estimate, 6), catalogue.currency)


def record_training(settings: Settings, model: str, result: dict[str, Any], used: Usage,
                    run_type: str | None) -> None:
    """On the run the train step logged (a cache hit's own small run) and, for a new version, on the version."""
    import json
    import time

    from mlflow.entities import Metric, RunTag

    from mlops import tracking

    client = tracking.client(settings)
    run_id = result.get("cache_run_id") or result["run_id"]
    now = int(time.time() * 1000)
    tags = {POOL: used.pool, NODE_TYPE: used.node_type, GPUS: str(used.gpus), CURRENCY: used.currency,
            **({NOTE: used.note} if used.note else {}), **({RUN_TYPE: run_type} if run_type else {})}
    # one request: on a tracking server each call is a round trip, on SQLite a transaction
    client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in (
        (GPU_SECONDS, used.gpu_seconds), (WALL_SECONDS, used.wall_seconds), (ESTIMATE, used.estimate))],
        tags=[RunTag(key, text) for key, text in tags.items()])
    if not result.get("cache_hit"):
        client.set_model_version_tag(model, str(result["model_version"]), VERSION_COST, json.dumps(used.to_dict()))


def kind(run_type: str | None) -> str:
    return KINDS.get(run_type or "", "manual")


def training_spend(settings: Settings, model: str, days: int = 30,
                   now: datetime | None = None) -> dict[str, Any]:
    """GPU-hours and estimated cost of the model's training runs in the last `days` days, split by why they ran
    (scheduled, drift-triggered, backfill, manual), and per day for the chart."""
    from mlops import tracking

    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    client = tracking.client(settings)
    exp = client.get_experiment_by_name(f"mlops/{model}")
    by_kind = {k: {"runs": 0, "gpu_hours": 0.0, "cost": 0.0} for k in KINDS.values()}
    per_day: dict[str, float] = {}
    currency = ""
    if exp is not None:
        runs = client.search_runs([exp.experiment_id], f"metrics.`{ESTIMATE}` >= 0 and attributes.start_time >= "
                                                       f"{int(since.timestamp() * 1000)}", max_results=5000)
        for run in runs:
            row = by_kind[kind(run.data.tags.get(RUN_TYPE))]
            row["runs"] += 1
            row["gpu_hours"] += run.data.metrics.get(GPU_SECONDS, 0.0) / 3600
            row["cost"] += run.data.metrics.get(ESTIMATE, 0.0)
            day = datetime.fromtimestamp(run.info.start_time / 1000, tz=timezone.utc).date().isoformat()
            per_day[day] = per_day.get(day, 0.0) + run.data.metrics.get(ESTIMATE, 0.0)
            currency = currency or run.data.tags.get(CURRENCY, "")
    total = {"runs": sum(r["runs"] for r in by_kind.values()),
             "gpu_hours": round(sum(r["gpu_hours"] for r in by_kind.values()), 4),
             "cost": round(sum(r["cost"] for r in by_kind.values()), 4)}
    for row in by_kind.values():
        row["gpu_hours"], row["cost"] = round(row["gpu_hours"], 4), round(row["cost"], 4)
    return {"days": days, "since": since.date().isoformat(), "currency": currency, "total": total,
            "by_kind": by_kind, "per_day": dict(sorted(per_day.items()))}


def retraining_estimate(settings: Settings, model: str, last: int = 5) -> dict[str, Any] | None:
    """What one retraining roughly costs: the mean of the model's last `last` runs that trained (cache hits
    excluded); None before any has."""
    from mlops import tracking

    client = tracking.client(settings)
    exp = client.get_experiment_by_name(f"mlops/{model}")
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], f"metrics.`{ESTIMATE}` >= 0 and tags.`{tracking.KIND}` = 'train'",
                              order_by=["attributes.start_time DESC"], max_results=last)
    if not runs:
        return None
    costs = [r.data.metrics.get(ESTIMATE, 0.0) for r in runs]
    minutes = [r.data.metrics.get(WALL_SECONDS, 0.0) / 60 for r in runs]
    return {"runs": len(runs), "cost": round(sum(costs) / len(costs), 6), "minutes": round(sum(minutes) / len(runs), 1),
            "currency": runs[0].data.tags.get(CURRENCY, "")}


def spend_svg(spend: dict[str, Any], width: int = 300, height: int = 40) -> str:
    """One bar per day of the window (its estimated training cost), for the fleet page."""
    from html import escape

    days = spend["days"]
    start = datetime.fromisoformat(spend["since"]).date()
    values = [spend["per_day"].get((start + timedelta(days=i + 1)).isoformat(), 0.0) for i in range(days)]
    top = max(values) or 1.0
    bar = width / days
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="training cost per day">']
    for i, value in enumerate(values):
        h = value / top * (height - 2)
        day = (start + timedelta(days=i + 1)).isoformat()
        parts.append(f'<rect x="{i * bar:.1f}" y="{height - h:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
                     f'fill="#3b6ea8"><title>{escape(day)}: {value:.2f} {escape(spend["currency"])}</title></rect>')
    parts.append(f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="#ccc"/></svg>')
    return "".join(parts)


def serving_intervals(rollouts: list[Any], now: datetime) -> list[tuple[str, datetime, datetime]]:
    """(version, from, to) of each deployed rollout's time in service: from its end to the end of the next
    deployed rollout (which retired it), or to `now` for the one that serves."""
    deployed = [r for r in rollouts if r.verdict == "deployed" and r.finished]
    out = []
    for i, r in enumerate(deployed):
        start = datetime.fromisoformat(r.finished)
        end = datetime.fromisoformat(deployed[i + 1].finished) if i + 1 < len(deployed) else now
        out.append((r.to_version, start, max(end, start)))
    return out


def serving_usage(catalogue: Catalogue, serving: Any, seconds: float) -> Usage:
    """`serving.replicas` replicas of `serving.gpus` GPUs on `serving.pool` for `seconds`."""
    return usage(catalogue, serving.pool, serving.gpus, seconds, replicas=serving.replicas)


def serving_spend(settings: Settings, spec: Any, days: int = 30, now: datetime | None = None) -> dict[str, Any] | None:
    """Replica-hours and estimated cost of the model's endpoint over the last `days` days (None: not served)."""
    if spec.serving is None:
        return None
    from mlops.compute import catalogue_path, load_catalogue
    from mlops.serving.records import RolloutLog

    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    catalogue = load_catalogue(catalogue_path(settings.compute_dir))
    seconds = sum(max((min(end, now) - max(start, since)).total_seconds(), 0.0)
                  for _, start, end in serving_intervals(RolloutLog(settings.audit_root, spec.name).all(), now))
    used = serving_usage(catalogue, spec.serving, seconds)
    return {"days": days, "replica_hours": round(seconds * spec.serving.replicas / 3600, 3),
            "gpu_hours": round(used.gpu_seconds / 3600, 3), "cost": used.estimate, "currency": used.currency,
            "pool": spec.serving.pool, "replicas": spec.serving.replicas}
