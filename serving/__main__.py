"""``python -m serving``: the same command line as ``dr-serving`` (the container entry point)."""

import sys

from serving.cli import main

sys.exit(main())
