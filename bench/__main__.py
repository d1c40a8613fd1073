"""``python -m bench``: see bench/run.py."""

import sys

import common.quiet_tf  # noqa: F401  (first: no native TensorFlow start-up lines unless --verbose)
from bench.run import main

sys.exit(main())
