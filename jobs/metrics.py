"""spark-submit entry point of the metrics step: ``spark-submit jobs/metrics.py [hodlflow metrics options]``."""

import sys

from hodlflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["metrics", *sys.argv[1:]]))
