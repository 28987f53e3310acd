"""``python -m heldout`` is the ``heldout`` command."""

from heldout.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
