"""Training throughput of the PyTorch example trainer (include/trainers/demand_nn.py) on each device
this machine has: the CPU with one thread (the baseline), the CPU with every thread, and CUDA when a GPU
is present. Same data, same network, same number of steps; prints samples per second and the ratio
against the baseline, and which device the trainer's own `auto` choice picks.

    python bench/torch_throughput.py [--rows 200000] [--epochs 3] [--hidden 256] [--batch-size 4096]
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include")]


def demand_rows(rows: int):
    import pandas as pd

    from mlops import synthetic

    per_day = 5000
    days = [synthetic.generate_partition("demand", date(2026, 1, 1) + timedelta(days=i), seed=0, rows=per_day)
            for i in range(max(1, rows // per_day))]
    return pd.concat(days, ignore_index=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4096)
    a = p.parse_args(argv)

    import numpy as np
    import torch

    from trainers import demand_nn

    frame = demand_rows(a.rows)
    x = demand_nn._design(frame)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) == 0, 1, x.std(axis=0))
    y = frame["units_sold"].to_numpy(dtype="float32")
    y = (y - y.mean()) / y.std()
    params = {"hidden": a.hidden, "layers": a.layers, "epochs": a.epochs, "batch_size": a.batch_size, "seed": 0}
    threads = torch.get_num_threads()
    runs = [("cpu, 1 thread", "cpu", 1), (f"cpu, {threads} threads", "cpu", threads)]
    if torch.cuda.is_available():
        runs.append((f"cuda ({torch.cuda.get_device_name(0)})", "cuda", threads))
    print(f"torch {torch.__version__}; {len(x)} rows x {x.shape[1]} features, {a.epochs} epochs, "
          f"MLP {a.layers}x{a.hidden}, batch {a.batch_size}; trainer's auto device: {demand_nn.pick_device('auto')}")
    baseline = None
    print(f"{'device':<40} {'samples/s':>12} {'seconds':>8} {'vs baseline':>11} {'final loss':>10}")
    for label, device, n_threads in runs:
        torch.set_num_threads(n_threads)
        # warm-up
        demand_nn.fit(x[: a.batch_size * 2], y[: a.batch_size * 2], {**params, "epochs": 1}, torch.device(device))
        _, figures = demand_nn.fit(x, y, params, torch.device(device))
        baseline = baseline or figures["train_samples_per_s"]
        print(f"{label:<40} {figures['train_samples_per_s']:>12,.0f} {figures['train_seconds']:>8.2f} "
              f"{figures['train_samples_per_s'] / baseline:>10.2f}x {figures['train_loss_std_units']:>10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
