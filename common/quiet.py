"""A quiet start: TensorFlow imported without its native start-up lines on stderr.

Importing TensorFlow 2.21 loads two native libraries, `_pywrap_cpu_feature_guard` and then
`_pywrap_tensorflow_internal`. Each carries its own copy of absl logging and of TSL's start-up
code, so each writes "All log messages before absl::InitializeLog() ..." and the oneDNN notice,
from C++, straight to file descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` is read. That is the
"initialised twice" a user sees: not two imports, one import of two libraries, and nothing in
Python can keep the second library from loading. What can be done is to hold fd 2 while the
import runs, drop the informational lines, and pass on anything else (an error stays visible).

Every command-line entry point calls `import_tensorflow()` first; `--verbose` or
`LOG_LEVEL=debug` (see `verbose_requested`) lets every native line through instead.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence

# Native start-up lines that carry no information for a user: absl's pre-init warning, and
# informational (I) or warning (W) lines of TensorFlow's C++ logging, with the tail of the
# cpu_feature_guard notice. Errors (E, F) and anything unrecognised are passed on.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$"
)


def verbose_requested(argv: Sequence[str] | None = None) -> bool:
    """True when the user asked for every native log line: `--verbose` or LOG_LEVEL=debug."""
    args = sys.argv[1:] if argv is None else argv
    return "--verbose" in args or os.environ.get("LOG_LEVEL", "").strip().lower() == "debug"


def import_tensorflow(verbose: bool | None = None) -> None:
    """Import TensorFlow once, quietly unless `verbose` (default: `verbose_requested()`)."""
    if "tensorflow" in sys.modules:
        return
    if verbose is None:
        verbose = verbose_requested()
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later native INFO/WARNING lines too
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            _pass_on(held.read().decode("utf-8", "replace"))


def _pass_on(text: str) -> None:
    kept = [line for line in text.splitlines() if line.strip() and not _NOISE.match(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)
