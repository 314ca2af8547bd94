"""``python -m lash``: the same as the ``lash`` console script."""

import sys

from lash.cli import main

sys.exit(main())
