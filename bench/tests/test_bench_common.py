"""bench.common: tables, the hardware record, config cases."""

import pytest

from bench import common


def test_markdown_table_and_hardware_record():
  table = common.markdown_table(["a", "b"], [[1, 2.5], ["x", None]])
  assert table.splitlines()[0].startswith("| a")
  assert len(table.splitlines()) == 4
  info = common.hardware_info()
  for key in (
    "cpu_model",
    "logical_cores",
    "physical_devices",
    "gpus",
    "tensorflow",
  ):
    assert key in info


def test_config_cases_parse_and_reject_unknown_configs():
  assert common.config_cases("tiny:2, micro:1,") == [("tiny", 2), ("micro", 1)]
  with pytest.raises(ValueError, match="nope"):
    common.config_cases("tiny:2,nope:1")


def test_config_cases_with_a_third_field():
  assert common.config_cases("tiny:2:xla", "mode") == [("tiny", 2, "xla")]
  assert common.config_cases(
    "tiny:2,micro:1:a+b", "variants", optional=True
  ) == [("tiny", 2, None), ("micro", 1, "a+b")]
  with pytest.raises(ValueError, match="config:N:mode"):
    common.config_cases("tiny:2", "mode")


@pytest.mark.parametrize(
  "item", ["tiny", "tiny:x", "tiny:0", "tiny:-1", "tiny:2:xla"]
)
def test_bad_cases_are_one_clear_error(item):
  with pytest.raises(ValueError, match=r"config:N \("):
    common.config_case(item)
