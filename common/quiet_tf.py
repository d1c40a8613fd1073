"""Importing this module imports TensorFlow without its native start-up lines (see common.quiet).

For modules that are entry points as well as imports (`uvicorn service.main:app`): import it
before anything that imports TensorFlow.
"""

from common.quiet import import_tensorflow

import_tensorflow()
