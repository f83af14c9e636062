"""`python -m repowire`, and the `repowire` command's entry point (pyproject.toml).

A command line run starts by importing, which only makes objects that live until it exits,
so the cyclic garbage collector is off until the command has found its root: get_root in
repowire/cli/common.py freezes what start-up made and turns the collector back on, before
any command does its work."""

import gc

gc.disable()

from repowire.cli import main  # noqa: E402  (imported with the collector off)

__all__ = ["main"]

if __name__ == "__main__":
    main()
