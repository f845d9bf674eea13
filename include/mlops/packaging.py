"""How a trained model is stored: an MLflow pyfunc that scores raw feature frames the same way
everywhere (evaluation, batch scoring, serving), whatever library the author used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import mlflow.pyfunc as pyfunc
from mlflow.pyfunc.model import PythonModel

from mlops.authoring import score

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from mlflow.pyfunc.model import PythonModelContext

    # predict's types (see there); aliases, as linters do not read type comments
    _Context = PythonModelContext | None
    _Frame = pd.DataFrame
    _Params = dict[str, Any] | None
    _Scores = npt.NDArray[np.float64]


class ScoringModel(PythonModel):
    def __init__(self, model: Any, task: str, features: list[str], predict_ref: str | None):
        self.model = model
        self.task = task
        self.features = features
        self.predict_ref = predict_ref

    # Typed by a type comment, not annotations: MLflow reads predict's annotations when the class is created
    # (input validation) and when the model is logged (signature inference); both must stay as they are.
    def predict(self, context, model_input, params=None):
        # type: (_Context, _Frame, _Params) -> _Scores
        return score(self.model, model_input[self.features], self.task, self.predict_ref)


def load_scorer(model_uri: str) -> ScoringModel:
    # unwrap_python_model() returns what was logged (mlops.train logs a ScoringModel); MLflow leaves it unannotated
    unwrapped = pyfunc.load_model(model_uri).unwrap_python_model()  # type: ignore[no-untyped-call]
    return cast(ScoringModel, unwrapped)
