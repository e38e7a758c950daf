"""`python -m chalicelib ...`: the local command line."""

import sys

from chalicelib.cli import main

sys.exit(main())
