"""`python -m streaming`: the live host (see streaming/cli.py)."""

from core.signals import exit_fast

from .cli import main

exit_fast(main())
