"""The model author's side of the contract: plain functions named in the spec.

    train(train_df, params) -> fitted model          (required)
    predict(model, features_df) -> scores            (optional)

Scores are the probability of the positive class for binary classification and the prediction for
regression. Without `predict` the platform calls `predict_proba(X)[:, 1]` or `predict(X)` on the model.

A trainer that learns in steps (epochs, boosting rounds) may call `report(step, model)` after each: in a
hyperparameter sweep's trial the platform scores the model so far on the trial's validation split and raises
`TrialPruned` when the sweep's pruner stops the trial; anywhere else `report` does nothing.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from mlops.spec.models import Trainer


class AuthoringError(RuntimeError):
    """The model author's code cannot be used as the spec says."""


class TrialPruned(Exception):  # noqa: N818 - Optuna's name for the same signal
    """Raised by `report` when the sweep stops this trial early; let it propagate out of `train`."""


# Set by a sweep's trial for the length of the author's `train` call (mlops.tuning.trial).
_reporter: Callable[[int, Any], None] | None = None


def reporting() -> bool:
    """Whether `report` does anything here (inside a sweep's trial): skip building models to report otherwise."""
    return _reporter is not None


def report(step: int, model: Any) -> None:
    """The model after `step` (an epoch, a boosting round), for a sweep's pruner; a no-op outside a trial.
    Raises TrialPruned when the trial should stop: let it propagate."""
    if _reporter is not None:
        _reporter(int(step), model)


def resolve(ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AuthoringError(
            f"cannot import '{module_name}' for '{ref}': {exc}.{_nearest_module(module_name)} Install the model's "
            "package in the trainer environment or fix trainer.function in the spec"
        ) from exc
    fn: object = getattr(module, attr, None)
    if not callable(fn):
        public = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        near = difflib.get_close_matches(attr, public, n=1)
        hint = f" (did you mean '{module_name}:{near[0]}'?)" if near else ""
        raise AuthoringError(
            f"'{module_name}' has no function '{attr}' (from '{ref}'){hint}; fix the spec or the module"
        )
    return fn


def reference_problems(trainer: Trainer) -> list[str]:
    """Each of the spec's trainer references that cannot be used, as `trainer.<field>: <why>`. Imports the
    author's modules, so the command line and the run's first task call it, never DAG parsing."""
    problems = []
    for field, ref in (("function", trainer.function), ("predict", trainer.predict)):
        if not ref:
            continue
        try:
            resolve(ref)
        except AuthoringError as exc:
            problems.append(f"trainer.{field}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the author's module failed while importing
            problems.append(f"trainer.{field}: importing '{ref}' raised {type(exc).__name__}: {exc}; fix the module")
    return problems


def _nearest_module(module_name: str) -> str:
    """' Did you mean ...?' for a misspelt module of a package that exists, else ''."""
    parent, _, leaf = module_name.rpartition(".")
    if not parent:
        return ""
    try:
        package = importlib.import_module(parent)
    except Exception:  # noqa: BLE001 - no hint then
        return ""
    names = [m.name for m in pkgutil.iter_modules(getattr(package, "__path__", []))]
    near = difflib.get_close_matches(leaf, names, n=1)
    return f" Did you mean '{parent}.{near[0]}'?" if near else ""


def source_of(ref: str | None) -> str:
    """The source text of the module behind a reference; part of the cache key."""
    if not ref:
        return ""
    module = importlib.import_module(ref.partition(":")[0])
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return getattr(module, "__version__", module.__name__)


def score(model: Any, features_df: pd.DataFrame, task: str, predict_ref: str | None) -> npt.NDArray[np.float64]:
    import numpy as np

    if predict_ref:
        scores = resolve(predict_ref)(model, features_df)
    elif task == "binary_classification":
        if not hasattr(model, "predict_proba"):
            raise AuthoringError("a binary classifier needs predict_proba, or name trainer.predict in the spec")
        scores = model.predict_proba(features_df)[:, 1]
    else:
        scores = model.predict(features_df)
    return np.asarray(scores, dtype=float).reshape(-1)
