"""Demand regressor: a random forest with a one-hot store column."""

import pandas as pd
from sklearn.ensemble import RandomForestRegressor

FEATURES = ["price", "promo", "temperature", "day_of_week"]
STORES = ["north", "south", "east", "west"]


def _design(df):
    stores = pd.get_dummies(pd.Categorical(df["store"], categories=STORES), prefix="store").astype("float64")
    return pd.concat([df[FEATURES].reset_index(drop=True).astype("float64"), stores.reset_index(drop=True)], axis=1)


def train(train_df, params):
    model = RandomForestRegressor(
        n_estimators=int(params.get("n_estimators", 60)),
        max_depth=params.get("max_depth"),
        min_samples_leaf=int(params.get("min_samples_leaf", 1)),
        random_state=params.get("seed"),
        n_jobs=1,
    )
    return model.fit(_design(train_df), train_df["units_sold"])


def predict(model, features_df):
    """Optional: how to score. Without it the platform calls predict_proba/predict on the raw frame."""
    return model.predict(_design(features_df))
