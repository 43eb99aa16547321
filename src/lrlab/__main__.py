"""``python -m lrlab``: the same as the ``lrlab`` command."""

from lrlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
