"""How a trained model is stored: an MLflow pyfunc that scores raw feature frames the same way
everywhere (evaluation, batch scoring, serving), whatever library the author used."""

from __future__ import annotations

import mlflow.pyfunc

from mlops.authoring import score


class ScoringModel(mlflow.pyfunc.PythonModel):
    def __init__(self, model, task: str, features: list[str], predict_ref: str | None):
        self.model = model
        self.task = task
        self.features = features
        self.predict_ref = predict_ref

    def predict(self, context, model_input, params=None):
        return score(self.model, model_input[self.features], self.task, self.predict_ref)


def load_scorer(model_uri: str) -> ScoringModel:
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
