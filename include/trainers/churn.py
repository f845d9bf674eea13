"""Churn classifier: logistic regression over scaled numeric and one-hot categorical features."""

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
CATEGORICAL = ["contract"]


def train(train_df, params):
    """Return a fitted model. `train_df` holds the features and the target; `params` the spec's
    hyperparameters (with any overrides from the trigger form) plus `seed`."""
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                    ]
                ),
            ),
            (
                "classifier",
                LogisticRegression(
                    C=float(params.get("C", 1.0)),
                    max_iter=int(params.get("max_iter", 300)),
                    random_state=params.get("seed"),
                ),
            ),
        ]
    )
    return model.fit(train_df[NUMERIC + CATEGORICAL], train_df["churned"])
