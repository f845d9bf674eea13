"""The demo's serving part: each served model's champion deployed (by hand, as the trigger form does), a
real request to its endpoint, and, when the watched model's retraining promotes a new champion, the deploy
that the champion's asset event starts (as the scheduler would) rolling it out through the canary bake.
The servers are stopped when the demo ends; `make serve` serves the deployed versions again."""

from __future__ import annotations

from datetime import datetime, timezone

from tools.run_log import RunLog


def request_line(settings, spec) -> str:
    """One row of the newest partition to the model's stable address: the answer and who gave it."""
    from mlops import data, scoring
    from mlops.serving import endpoint
    from mlops.serving.status import endpoint_of

    url = endpoint_of(settings, spec)
    if url is None:
        return f"{spec.name}: not served"
    day = data.newest_partition_day(spec, settings.data_root)
    row = scoring.read_partition(spec, settings, day)[list(spec.dataset.features)].head(1)
    answer = endpoint.invoke(endpoint.session(), url, endpoint.frame_body(row), spec.serving.timeouts.request_seconds)
    if not answer.ok:
        return f"{spec.name}: POST {url}/invocations failed: {endpoint.describe(answer)}"
    return (f"POST {url}/invocations {row.to_dict(orient='records')[0]} -> {answer.scores[0]:.4g} "
            f"(served by v{answer.version} in {answer.seconds * 1000:.1f} ms)")


def rollout_lines(settings, spec) -> list[str]:
    from mlops.serving.records import RolloutLog

    r = RolloutLog(settings.audit_root, spec.name).latest()
    if r is None:
        return [f"{spec.name}: no rollout"]
    move = f"v{r.from_version} -> v{r.to_version}" if r.from_version else f"first rollout of v{r.to_version}"
    lines = [f"{move}: {r.verdict} ({r.timeline()})"]
    if r.failure:
        lines.append(f"  failed at {r.failure['step']}: {r.failure['reason']}")
    if r.bake and r.bake.get("requests"):
        b = r.bake
        shift = "".join(f", {label} {b[key]:.4f}" for key, label in (("psi", "PSI against the stable version"),
                        ("disagreement", "class disagreement")) if b.get(key) is not None)
        how = ", in shadow to both versions" if len(b.get("versions_answered") or {}) > 1 else ""
        lines.append(f"  bake: {b['requests']} requests of {b['traffic']}{how}: error rate {b['error_rate']:.2%}, "
                     f"p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms{shift}")
    return lines


def first_deploys(bag, specs, settings, runs: RunLog, failures: list[str]) -> list[str]:
    from tools.demo import run_dag, unpause

    story = []
    for spec in specs:
        dr, state = run_dag(runs, spec.name, bag.dags[spec.deploy_dag_id], datetime.now(timezone.utc))
        if state != "success":
            failures.append(f"{spec.deploy_dag_id} (first deploy)")
        story += [f"{spec.name}: " + line for line in rollout_lines(settings, spec)]
        story.append(f"{spec.name}: " + request_line(settings, spec))
        unpause(spec.deploy_dag_id)  # from now on a new champion's asset event starts a deploy
    return story


def deploy_from_asset(bag, spec, settings, runs: RunLog, failures: list[str]) -> list[str]:
    """The deploy the new champion's asset event queued, started and run as the scheduler would."""
    from tools.asset_runs import run_existing, start_asset_triggered_run

    started: list[str] = []

    def deploy() -> str:
        run_id = start_asset_triggered_run(spec.deploy_dag_id)
        if run_id is None:
            return "not started: the champion did not change"
        started.append(run_id)
        return run_existing(bag.dags[spec.deploy_dag_id], run_id)

    state, _ = runs.run(spec.name, spec.deploy_dag_id, "asset-triggered", deploy)
    if not started:
        return [f"{spec.name}: no new champion, no rollout"]
    if state != "success":
        failures.append(f"{spec.deploy_dag_id} {started[0]}")
    lines = [f"{spec.name}: deploy run {started[0]} (started from the champion's asset event): {state}"]
    lines += [f"{spec.name}: " + line for line in rollout_lines(settings, spec)]
    return lines + [f"{spec.name}: " + request_line(settings, spec)]


def stop_servers(settings) -> str:
    from mlops.serving import control

    stopped = control.stop(settings.serving.dir)
    return ("stopped the model servers; `make serve` serves the deployed versions again" if stopped
            else "no model server was running")
