"""`python -m streaming`: the live host (see streaming/cli.py)."""
import sys

from .cli import main

sys.exit(main())
