"""The λ path of IRM and IRM-TV-ℓ1 on the corrupted-env experiment (docs/results.md; about 2 minutes on CPU).

Run from the repository root: ``.venv/bin/python docs/scripts/corrupted_env_lambda_path.py``.
Every λ is reported (final step, mean ± std over 10 seeds); none is selected on test data.
"""

import time

import jaxirm
from jaxirm import experiments
from jaxirm.datasets import to_batch


def main() -> None:
    exp = experiments.get("corrupted-env")
    data = [exp.data(seed) for seed in range(10)]  # (train, val, test) of every seed
    train, test = (to_batch([d[split] for d in data], with_z=False) for split in (0, 2))
    lams = [1.0, 10.0, 100.0, 1000.0]
    for name in ("IRM", "IRM-TV-l1"):
        method = exp.method(name)
        grid = {k: [v] for k, v in method.hparams.items() if k != "lam"}
        grid["lam"] = lams
        start = time.perf_counter()
        result = jaxirm.sweep(
            method.build(), train, 5000, seeds=10, grid=grid, test=test, eval_every=500, data_per_seed=True
        )
        final = result.selection["final"]
        mean, worst = final["test_mean"].reshape(10, -1), final["test_worst"].reshape(10, -1)
        print(f"{name} ({time.perf_counter() - start:.0f} s)")
        for j, lam in enumerate(lams):
            print(
                f"  lam {lam:7.1f}: mean {mean[:, j].mean():.4f} ± {mean[:, j].std():.4f}  "
                f"worst {worst[:, j].mean():.4f} ± {worst[:, j].std():.4f}"
            )


if __name__ == "__main__":
    main()
