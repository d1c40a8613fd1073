"""Moved to tests/support/service_testkit.py (import it as ``tests.support.service_testkit``).

This name stays only for the service tests that still say ``from service_testkit import ...``
(found because pytest puts this folder on sys.path for its test modules); delete it once they
import the support module.
"""

from tests.support.service_testkit import *  # noqa: F403
from tests.support.service_testkit import __all__  # noqa: F401
