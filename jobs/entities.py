"""spark-submit entry point of the entities step: ``spark-submit jobs/entities.py [hodlflow entities options]``."""

import sys

from hodlflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["entities", *sys.argv[1:]]))
