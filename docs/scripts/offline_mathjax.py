"""MkDocs hook: the site serves its own copy of MathJax, so formulas render without network access.

MathJax 3 comes from the ``django-static-mathjax`` package (in the ``docs`` extra): a plain copy of MathJax's
files (Apache-2.0) under ``mathjax/static/mathjax/``; Django is neither needed nor imported. After each build
its ``es5`` folder (the browser bundles, fonts and the extensions they load on demand) is copied to
``javascripts/mathjax/`` in the site, where ``mkdocs.yml``'s ``extra_javascript`` loads
``tex-mml-chtml.js``. A build without the package fails with the command that installs it.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from mkdocs.exceptions import PluginError

#: Where the site holds MathJax, relative to the site folder (mkdocs.yml's extra_javascript points into it).
TARGET = "javascripts/mathjax"
#: The bundle the pages load: TeX and MathML input, HTML-CSS (CHTML) output.
BUNDLE = "tex-mml-chtml.js"


def mathjax_dir() -> Path:
    """The folder of MathJax's browser files (``es5``) in the installed django-static-mathjax package."""
    hint = 'the docs need MathJax from the docs extra: pip install -e ".[docs]"'
    try:
        root = Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    except ModuleNotFoundError as err:
        raise PluginError(f"{hint} (the module 'mathjax' is missing)") from err
    if not (root / BUNDLE).is_file():
        raise PluginError(f"{hint} ({root / BUNDLE} not found)")
    return root


def on_config(config):
    mathjax_dir()  # fail before building, not after
    return config


def on_post_build(config) -> None:
    shutil.copytree(mathjax_dir(), Path(config["site_dir"]) / TARGET, dirs_exist_ok=True)
