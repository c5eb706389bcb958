"""bench's tests: clean gin state (hvrnn_tf/testing/fixtures.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hvrnn_tf.testing.fixtures import clean_gin  # noqa: F401,E402  pylint: disable=unused-import,g-import-not-at-top
