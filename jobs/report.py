"""spark-submit entry point of the report: ``spark-submit jobs/report.py [hodlflow report options]``."""

import sys

from hodlflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
