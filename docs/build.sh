#!/usr/bin/env bash
# Builds the documentation site in strict mode (any warning fails), offline.
# Usage: bash docs/build.sh [OUTPUT_DIR]   (default: site, relative to the current directory)
# Uses the repository's .venv when present, else the mkdocs on PATH (override with MKDOCS=...).
set -euo pipefail

out="${1:-site}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ -z "${MKDOCS:-}" ]; then
  if [ -x .venv/bin/mkdocs ]; then
    MKDOCS=.venv/bin/mkdocs
  else
    MKDOCS=mkdocs
  fi
fi

# Silences the MkDocs 2.0 / Material end-of-life banner (the toolchain is pinned below 10).
export NO_MKDOCS_2_WARNING=1
"$MKDOCS" build --strict --clean --config-file mkdocs.yml --site-dir "$out"
echo "docs built in $out"
