"""spark-submit entry point of the ingest step: ``spark-submit jobs/ingest.py [hodlflow ingest options]``."""

import sys

from hodlflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
