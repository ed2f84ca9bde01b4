"""When to show progress (private): one rule for `fit`, `reproduce` and the CLI."""

from __future__ import annotations

import os
import sys


def progress_enabled(progress: bool | None = None) -> bool:
    """``progress`` when given, else True only on an interactive terminal (stderr) without ``CI`` set."""
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and not os.environ.get("CI")
