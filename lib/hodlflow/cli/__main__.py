"""``python -m hodlflow.cli``: the ``hodlflow`` command."""

import sys

from hodlflow.cli import main

sys.exit(main())
