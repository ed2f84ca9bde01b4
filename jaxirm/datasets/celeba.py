"""CelebA Smiling with precomputed ResNet-18 features (the ZIN / IRM-TV ``celebaz_feature`` CSVs).

The CSVs are the ZIN authors' (``train_40000_0.999_0.8_20000_0.01_0.2_0.8_0.999.csv`` and the ``test_…``
one, downloaded by ZIN's ``data_downloader.sh``); the user supplies their paths. Columns are told apart by
their prefixes: ``x_*`` the 512 frozen ResNet-18 features, one ``y_*`` the label (Smiling), ``z_*`` the 7
auxiliary attributes (Young, Blond_Hair, Eyeglasses, High_Cheekbones, Big_Nose, Bags_Under_Eyes, Chubby),
one ``g_*`` the environment, ``sp_*`` whether Smiling agrees with the spurious attribute Male (not used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxirm import _validation as _v
from jaxirm.datasets._base import EnvData, env_data
from jaxirm.datasets._io import read_csv, read_header, renumber

__all__ = ["celeba_features"]

_WHAT = {"train": "CelebA training feature file", "test": "CelebA test feature file"}


def _x_order(name: str) -> tuple[int, int | str]:
    suffix = name[2:]
    return (0, int(suffix)) if suffix.isdigit() else (1, suffix)


def _read(path: Path, side: str, aux_num: int | None) -> tuple[np.ndarray, ...]:
    what = _WHAT[side]
    header = read_header(path, what)
    xs = sorted((c for c in header if c.startswith("x_")), key=_x_order)
    ys = [c for c in header if c.startswith("y_")]
    zs = [c for c in header if c.startswith("z_")]
    gs = [c for c in header if c.startswith("g_")]
    if not xs or not zs:
        raise ValueError(
            f"{what} {str(path)!r} needs feature columns 'x_*' and auxiliary columns 'z_*', found "
            f"{len(xs)} x_ and {len(zs)} z_ columns"
        )
    for prefix, found in (("y_", ys), ("g_", gs)):
        if len(found) != 1:
            raise ValueError(f"{what} {str(path)!r} must have exactly one '{prefix}*' column, found {found}")
    if aux_num is not None:
        if aux_num > len(zs):
            raise ValueError(f"aux_num = {aux_num} but {what} {str(path)!r} has only {len(zs)} z_ columns")
        zs = zs[:aux_num]
    cols = read_csv(path, what, required=[*xs, ys[0], *zs, gs[0]], numeric=[*xs, ys[0], *zs, gs[0]])
    x = np.stack([cols[c] for c in xs], axis=1)
    y = cols[ys[0]]
    values = set(np.unique(y).tolist())
    if values <= {-1.0, 1.0}:  # CelebA's raw attributes are ±1
        y = (y > 0).astype(np.float64)
    elif not values <= {0.0, 1.0}:
        raise ValueError(
            f"{what} {str(path)!r}: label column {ys[0]!r} must be binary, got values {sorted(values)[:5]}"
        )
    z = np.stack([cols[c] for c in zs], axis=1)
    return x, y, z, cols[gs[0]]


def celeba_features(
    train_path: str | Path,
    test_path: str | Path,
    *,
    test_envs: str = "auto",
    num_test_envs: int = 4,
    aux_num: int | None = None,
) -> tuple[EnvData, EnvData]:
    """The ZIN CelebA feature CSVs as `EnvData`: Smiling from ResNet-18 features, 2 + 4 environments.

    Protocol (the IRM-TV papers and ZIN, see References): the training CSV has two environments of about
    20000 rows in which Smiling agrees with Male in a fraction c = 0.999 and 0.8 of the rows; the test CSV
    has four of 5000 with c = 0.01, 0.2, 0.8, 0.999. x and z are returned as stored (the released code feeds
    them raw; ZIN normalises z inside its inference network); y is 0/1 (±1 labels are mapped to 0/1).

    Environments. Training: the values of the ``g_*`` column, renumbered 0..k−1 in sorted order (two values
    expected). Test, by ``test_envs``:

    * ``"column"``: the ``g_*`` column, renumbered likewise;
    * ``"blocks"``: ``num_test_envs`` consecutive blocks of equal size in file order (for a CSV whose g is
      gender rather than the environment and whose rows are stored environment by environment; there is no
      way to check the latter from the file);
    * ``"auto"`` (default): ``"column"`` when the test g column has exactly ``num_test_envs`` distinct values,
      else ``"blocks"``.

    What the evidence says: the papers describe the environments as gender (the IRM-type methods use gender
    as the environment indicator), but ZIN's generator (``celeba_z.py``, ``align_envs``) writes g = the
    index of the subsampled environment (minus the number of training environments on the test side), and
    ZIN's evaluation splits the test rows by g into 4 environments (``MetaAcc(env=4)``). So the released test
    CSV most likely holds 0..3 in g, which ``"auto"`` then reads; the training g is then 0/1 for c = 0.999
    and 0.8. The CSVs themselves were not available to check.

    Args:
      train_path: the training CSV.
      test_path: the test CSV.
      test_envs: ``"auto"``, ``"column"`` or ``"blocks"`` (above).
      num_test_envs: the number of test environments for ``"blocks"`` and ``"auto"`` (4).
      aux_num: keep only the first ``aux_num`` z columns (ZIN's ``--aux_num``); None keeps all 7.

    Returns:
      ``(train, test)`` `EnvData`: x ``[n, 512]`` (x columns sorted by their number), y ``[n]`` in {0, 1},
      envs ``[n]``, z ``[n, aux_num or 7]`` (z columns in file order).

    Raises:
      FileNotFoundError: a file is missing (the message names the path).
      ValueError: missing x/z columns, not exactly one y or g column (the message names the file),
        non-numeric values, a non-binary label, the two files with different feature counts, a test file
        not divisible into ``num_test_envs`` blocks, or a bad ``test_envs`` / ``num_test_envs`` / ``aux_num``.
      TypeError: arguments of the wrong type.

    Examples:
      >>> import csv, os, tempfile
      >>> folder = tempfile.mkdtemp()
      >>> def write(name, n, g):
      ...     with open(os.path.join(folder, name), "w", newline="") as f:
      ...         w = csv.writer(f)
      ...         _ = w.writerow([f"x_{j}" for j in range(8)] + ["y_Smiling"] + [f"z_{j}" for j in range(7)]
      ...                        + ["g_Male", "sp_"])
      ...         for i in range(n):
      ...             x = [0.1 * ((i * j) % 7) for j in range(8)]
      ...             _ = w.writerow(x + [i % 2] + [(i + j) % 2 for j in range(7)] + [g(i), 1])
      >>> write("train.csv", 12, lambda i: i % 2)
      >>> write("test.csv", 16, lambda i: i // 4)
      >>> train, test = celeba_features(os.path.join(folder, "train.csv"), os.path.join(folder, "test.csv"))
      >>> train.x.shape, train.num_envs, test.num_envs, test.z.shape
      ((12, 8), 2, 4, (16, 7))

    References:
      Lai & Wang, "Invariant Risk Minimization Is A Total Variation Model", ICML 2024, arXiv:2405.01389
      (Sec. 4.2, the CelebA experiment).

      Wang, Lai & Zhong, "Out-of-distribution Generalization for Total Variation based Invariant Risk
      Minimization", ICLR 2025, arXiv:2502.19665 (Table 2, CelebA).

      Lin et al., "ZIN: When and How to Learn Invariance Without Environment Partition?", NeurIPS 2022
      (the CelebA feature CSVs and their generator ``celeba_z.py``).
    """
    train_path = _v.check_path("train_path", train_path)
    test_path = _v.check_path("test_path", test_path)
    test_envs = _v.check_choice("test_envs", test_envs, ("auto", "column", "blocks"))
    num_test_envs = _v.check_int("num_test_envs", num_test_envs, 1)
    if aux_num is not None:
        aux_num = _v.check_int("aux_num", aux_num, 1, what="an int or None")
    x_tr, y_tr, z_tr, g_tr = _read(train_path, "train", aux_num)
    x_te, y_te, z_te, g_te = _read(test_path, "test", aux_num)
    if x_tr.shape[1] != x_te.shape[1] or z_tr.shape[1] != z_te.shape[1]:
        raise ValueError(
            f"the training file has {x_tr.shape[1]} x_ and {z_tr.shape[1]} z_ columns but the test file has "
            f"{x_te.shape[1]} and {z_te.shape[1]}; they must match"
        )
    env_tr, n_env_tr = renumber(g_tr)
    if test_envs == "auto":
        test_envs = "column" if len(np.unique(g_te)) == num_test_envs else "blocks"
    if test_envs == "column":
        env_te, n_env_te = renumber(g_te)
    else:
        n = x_te.shape[0]
        if n % num_test_envs:
            raise ValueError(
                f"{_WHAT['test']} {str(test_path)!r} has {n} rows, not divisible into {num_test_envs} "
                f"equal blocks (test_envs='blocks')"
            )
        env_te, n_env_te = np.arange(n) // (n // num_test_envs), int(num_test_envs)
    return (
        env_data(x_tr, y_tr, env_tr, z_tr, n_env_tr),
        env_data(x_te, y_te, env_te, z_te, n_env_te),
    )
