"""``python -m jaxirm``: the command line."""

from jaxirm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
