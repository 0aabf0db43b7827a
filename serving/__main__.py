"""``python -m serving``: the same command line as ``dr-serving`` (the container entry point)."""

import sys

from dr_cli.main import main

sys.exit(main())
