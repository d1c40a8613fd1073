"""Work-arounds for the pinned Keras, each with the upstream change that makes it unneeded."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def known_end_of_data(steps_per_epoch: int | None) -> Iterator[None]:
    """Keras 3.15 warns "Your input ran out of data; interrupting training" at the end of the first
    epoch of every `fit` whose stream has no known length (ours: input dropout filters its copies),
    because running to the end is how it learns the epoch's length. Nothing is wrong then, and the
    warning's advice does not apply (keras-team/keras#23360, merged after 3.15, warns only when
    `steps_per_epoch` was given). With `steps_per_epoch` set the warning stays: it is real there."""
    with warnings.catch_warnings():
        if steps_per_epoch is None:
            warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        yield
