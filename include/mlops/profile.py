"""A reference profile of the training data, stored with each model version.

Drift monitoring compares new batches against it, so it keeps bin edges and counts (not the data):
deciles for numeric features, frequencies for categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.spec import ModelSpec


def build_profile(spec: ModelSpec, frame: pd.DataFrame) -> dict:
    features = {}
    for name, feature in spec.dataset.features.items():
        col = frame[name]
        entry = {"type": feature.type, "count": int(col.notna().sum()), "nulls": int(col.isna().sum())}
        if feature.type == "category":
            freq = col.astype(str).value_counts()
            entry["frequencies"] = {str(k): int(v) for k, v in freq.items()}
        else:
            values = pd.to_numeric(col, errors="coerce").dropna().to_numpy(dtype=float)
            edges = np.unique(np.quantile(values, np.linspace(0, 1, 11))) if len(values) else np.array([])
            counts = np.histogram(values, bins=edges)[0] if len(edges) > 1 else np.array([len(values)])
            entry.update(
                mean=float(values.mean()) if len(values) else None,
                std=float(values.std()) if len(values) else None,
                edges=edges.tolist(),
                counts=counts.astype(int).tolist(),
            )
        features[name] = entry
    return {"rows": int(len(frame)), "features": features}
