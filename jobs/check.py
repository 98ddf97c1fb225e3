"""spark-submit entry point of the check step: ``spark-submit jobs/check.py``."""

import sys

from hodlflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["check", *sys.argv[1:]]))
