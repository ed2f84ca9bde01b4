"""Training loops: `fit` (one run, `lax.scan` in chunks, evaluation and model selection), `sweep` (seeds ×
hyperparameter grids vmapped in one compile, the sweep axis sharded over every device) and `run` (the bare
scan of ``solver.step`` both build on).

Model selection is explicit and reported by name (never mixed; see `jaxirm.selection`):

* ``"final"``: the model after the last step.
* ``"train-val"``: the evaluated step with the best metric on held-out data of the *training* environments
  (``val``), and the test metrics at that step.
* ``"oracle"``: the best test mean and, separately, the best test worst over the evaluated steps — test-set
  selection, what the released code records as its best results.

This module gathers the public names; the code lives in `jaxirm._iterate` (`run`, the shared chunk),
`jaxirm._fit`, `jaxirm._sweep`, `jaxirm._solution` (the result types) and `jaxirm.selection` (evaluation and
the selection rules).
"""

from jaxirm._fit import fit
from jaxirm._iterate import run
from jaxirm._solution import FitResult, SweepResult
from jaxirm._sweep import sweep
from jaxirm.selection import STEP_SELECTIONS as SELECTIONS
from jaxirm.selection import evaluate

__all__ = ["FitResult", "SweepResult", "evaluate", "fit", "run", "sweep", "SELECTIONS"]
