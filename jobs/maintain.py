"""spark-submit entry point of the maintenance step: ``spark-submit jobs/maintain.py [hodlflow maintain options]``."""

import sys

from hodlflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["maintain", *sys.argv[1:]]))
