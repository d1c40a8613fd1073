"""What the benchmarks (bench/), the reliability runs (reliability/), the container test (deploy/)
and the tests share to drive the service from outside: starting a server and waiting for it
(``harness.server``), placing model versions and the tiny training recipe (``harness.models``).

Standard library only at import time: ``deploy/container/ctl.py`` runs under the system python3.
"""
