"""`python -m streaming`: the live host (see streaming/cli.py)."""

from model.signals import exit_fast

from .cli import main

exit_fast(main())
