"""`python -m bench`: see bench/run.py."""

import sys

from bench.run import main

# Guarded although multiprocessing's spawn skips a package's __main__ when it rebuilds the main
# module in a child (bench/seed.py's producer): a module that runs on import is a trap.
if __name__ == "__main__":
    sys.exit(main())
