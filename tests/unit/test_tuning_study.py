"""Sweeps on plain values: the spec's tuning section and its checks, the trigger's rules, and the study steps
(ask, tell, reap) against a real Optuna RDB storage on SQLite; pruning decided by Optuna's median pruner."""


import pytest
import yaml

from helpers import MODELS, load_example
from mlops.run_request import RunRequestError, tuning_request
from mlops.spec.checks import check
from mlops.tuning import pruning, storage
from mlops.tuning import study as studies


def demand_with(**tuning):
    data = yaml.safe_load((MODELS / "demand.yaml").read_text())
    data["tuning"].update(tuning)
    return data


def problems_of(data):
    return check(data, "demand.yaml")[1]


def test_the_example_sweeps_load():
    for name in ("demand", "demand_nn"):
        spec = load_example(name)
        assert spec.tuning is not None and spec.tune_dag_id == f"{name}__tune"


def test_a_search_space_that_does_not_match_the_trainer_is_refused_naming_each_field():
    data = demand_with(parameters={
        "n_estimatorz": {"type": "int", "low": 10, "high": 100},              # no such hyperparameter
        "max_depth": {"type": "float", "low": 0.5, "high": 3000},             # outside the form's range 1..64
        "min_samples_leaf": {"type": "categorical", "choices": ["a", "b"]},   # not the default's type
    })
    problems = "\n".join(problems_of(data))
    assert "tuning.parameters.n_estimatorz: not one of trainer.hyperparameters" in problems
    assert "tuning.parameters.max_depth: 0.5..3000 reaches outside trainer.hyperparameter_ranges.max_depth" in problems
    assert "tuning.parameters.min_samples_leaf: choices ['a', 'b'] are not all of the default's type (int)" in problems


@pytest.mark.parametrize("parameter, message", [
    ({"type": "float", "low": 0, "high": 1, "log": True}, "a log-scale range must start above 0"),
    ({"type": "int", "low": 5, "high": 2}, "low (5) is larger than high (2)"),
    ({"type": "int", "low": 1.5, "high": 4}, "must be whole numbers"),
    ({"type": "categorical"}, "needs `choices`"),
    ({"type": "categorical", "choices": [1, 1]}, "repeat a value"),
    ({"type": "float", "high": 1}, "needs `low` and `high`"),
])
def test_a_bad_distribution_says_what_is_wrong(parameter, message):
    problems = problems_of(demand_with(parameters={"max_depth": parameter}))
    assert any(p.startswith("tuning.parameters.max_depth") and message in p for p in problems), problems


def test_the_budget_must_fit_its_limits_and_rounds():
    problems = "\n".join(problems_of(demand_with(trials=500, max_trials=100)))
    assert "trials (500) is above max_trials (100)" in problems
    problems = "\n".join(problems_of(demand_with(trials=40, parallelism=2, rounds=10)))
    assert "40 trials at 2 at once take 20 rounds but rounds is 10" in problems
    problems = "\n".join(problems_of(demand_with(sampler="grid", parameters={
        "max_depth": {"type": "float", "low": 1, "high": 10}})))
    assert "the grid sampler needs discrete values" in problems


def test_the_trigger_is_checked_against_the_spec_limits():
    spec = load_example("demand")
    assert tuning_request(spec, {}) == {"trials": 20, "parallel_trials": 2, "sampler": "tpe", "time_budget_minutes": 60}
    with pytest.raises(RunRequestError) as err:
        tuning_request(spec, {"trials": 500, "parallel_trials": 9}, conf={"trials": 500, "paralel_trials": 9})
    text = str(err.value)
    assert "trials: 500 is above this model's limit of 100 (tuning.max_trials)" in text
    assert "parallel_trials: 9 is above this model's limit of 8" in text
    assert "paralel_trials: no such field" in text and "did you mean 'parallel_trials'?" in text
    with pytest.raises(RunRequestError, match="take 50 rounds and this sweep has 10 .* raise parallel_trials to 10"):
        tuning_request(spec, {"trials": 100, "parallel_trials": 2})
    with pytest.raises(RunRequestError, match="trials: give a whole number"):
        tuning_request(spec, {"trials": 2.5})


@pytest.fixture
def store(tmp_path):
    return storage.open_storage(f"sqlite:///{tmp_path / 'studies.db'}", "MLOPS_TUNING_STORAGE")


def _sweep(spec, trials=6, parallelism=2, sampler="tpe"):
    return studies.new_sweep(spec, studies.study_name(spec, "fp", "code", sampler), trials, parallelism, 60, sampler)


def test_the_spec_defaults_are_asked_first_and_the_budget_is_never_exceeded(store):
    spec = load_example("demand")
    sweep = _sweep(spec, trials=3)
    study = studies.load_study(store, spec, sweep)
    first = studies.ask(study, spec, sweep, 1, 2)
    assert first[0]["defaults"] and first[0]["params"] == {"n_estimators": 60, "max_depth": 8, "min_samples_leaf": 5}
    assert first[0]["label"] == "#0 (spec defaults) max_depth=8, min_samples_leaf=5, n_estimators=60"
    assert not first[1]["defaults"] and first[1]["params"] != first[0]["params"]
    for t in first:
        studies.tell(study, {"number": t["number"], "state": "complete", "value": 5.0 + t["number"]})
    second = studies.ask(studies.load_study(store, spec, sweep), spec, sweep, 2, 2)
    assert len(second) == 1  # 3 trials wanted, 2 finished
    assert second[0]["params"] not in [t["params"] for t in first]  # a new draw, not the first round's again
    study = studies.load_study(store, spec, sweep)
    studies.tell(study, {"number": second[0]["number"], "state": "complete", "value": 4.0})
    assert studies.ask(study, spec, sweep, 3, 2) == []
    summary = studies.summary(study)
    assert summary["counts"]["complete"] == 3 and summary["best"]["number"] == second[0]["number"]


def test_a_trial_left_running_is_failed_and_asked_again(store):
    spec = load_example("demand")
    sweep = _sweep(spec, trials=2)
    study = studies.load_study(store, spec, sweep)
    asked = studies.ask(study, spec, sweep, 1, 2)
    studies.tell(study, {"number": asked[0]["number"], "state": "complete", "value": 3.0})
    # asked[1]'s task was killed before it told: the next round's ask fails it and asks one in its place
    again = studies.ask(studies.load_study(store, spec, sweep), spec, sweep, 2, 2)
    summary = studies.summary(studies.load_study(store, spec, sweep))
    lost = next(t for t in summary["history"] if t["number"] == asked[1]["number"])
    assert lost["state"] == "fail" and "ended without telling a result" in lost["failure"]
    assert len(again) == 1 and again[0]["number"] == 2
    # the defaults trial finished, so it is not asked twice
    assert not again[0]["defaults"]


def test_a_grid_asks_each_point_once(store):
    data = demand_with(sampler="grid", parameters={"max_depth": {"type": "int", "low": 2, "high": 4},
                                                   "min_samples_leaf": {"type": "categorical", "choices": [1, 5]}})
    spec, problems = check(data, "demand.yaml")
    assert not problems
    sweep = _sweep(spec, trials=20, parallelism=4, sampler="grid")
    seen = []
    for round_no in range(1, 5):
        study = studies.load_study(store, spec, sweep)
        for t in studies.ask(study, spec, sweep, round_no, 4):
            seen.append((t["params"]["max_depth"], t["params"]["min_samples_leaf"]))
            studies.tell(study, {"number": t["number"], "state": "complete", "value": 1.0})
    assert sorted(seen) == [(d, leaf) for d in (2, 3, 4) for leaf in (1, 5)]


def test_a_pruned_trial_keeps_its_steps(store):
    spec = load_example("demand_nn")
    sweep = _sweep(spec, trials=1)
    study = studies.load_study(store, spec, sweep)
    (asked,) = studies.ask(study, spec, sweep, 1, 1)
    studies.tell(study, {"number": asked["number"], "state": "pruned", "value": 9.0,
                         "intermediate": [[0, 12.0], [1, 9.0]]})
    trial = studies.load_study(store, spec, sweep).trials[0]
    assert trial.state.name == "PRUNED" and trial.intermediate_values == {0: 12.0, 1: 9.0}


def test_the_median_pruner_stops_a_trial_worse_than_the_finished_ones_at_the_same_step(store):
    import optuna

    study = optuna.create_study(storage=store, study_name="p", direction="minimize")
    for offset in (0.0, 0.1, 0.2):
        trial = study.ask()
        for step in range(5):
            trial.report(10.0 - step + offset, step)
        study.tell(trial, 6.0 + offset)
    snap = pruning.snapshot(study, startup_trials=2, warmup_steps=1)
    assert len(snap["trials"]) == 3 and snap["direction"] == "minimize"
    good = pruning.SnapshotPruner(snap)
    assert not good.prune_after(0, 99.0)  # warm-up step: never pruned
    assert not good.prune_after(1, 8.0)   # better than the median (9.1) at step 1
    bad = pruning.SnapshotPruner(snap)
    assert not bad.prune_after(0, 99.0)
    assert bad.prune_after(1, 20.0)


def test_study_names_change_with_what_makes_trials_comparable():
    spec = load_example("demand")
    name = studies.study_name(spec, "fp", "code", "tpe")
    assert name.startswith("demand-") and name == studies.study_name(spec, "fp", "code", "tpe")
    assert name != studies.study_name(spec, "fp2", "code", "tpe")
    assert name != studies.study_name(spec, "fp", "code", "random")
    assert name != studies.study_name(spec, "fp", "code2", "tpe")


def test_the_metadata_database_and_an_unreachable_one_are_refused_naming_where_they_came_from(tmp_path):
    db = f"sqlite:///{tmp_path / 'airflow.db'}"
    with pytest.raises(storage.StudyStorageError, match="Airflow's metadata database"):
        storage.open_storage(db, "the Airflow connection 'mlops_optuna'", forbidden=db)
    with pytest.raises(storage.StudyStorageError) as err:
        storage.open_storage("postgresql://optuna:secret@127.0.0.1:1/optuna", "the Airflow connection 'mlops_optuna'")
    text = str(err.value)
    assert "the Airflow connection 'mlops_optuna'" in text and "127.0.0.1:1/optuna" in text and "secret" not in text
    assert storage.normalised("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"


def test_labels_are_short_and_name_the_parameters():
    label = studies.label(3, {"alpha": 0.000123456, "kind": "x" * 400})
    assert label.startswith("#3 alpha=0.0001235, kind=xxx") and len(label) <= 250
