"""pytest fixtures of every test folder's conftest.py (tests/, bench/tests/)."""

import pytest

import gin


@pytest.fixture(autouse=True)
def clean_gin():
  """Every test starts and ends with no gin bindings."""
  gin.clear_config()
  yield
  gin.clear_config()
