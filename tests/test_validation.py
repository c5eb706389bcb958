"""Tests of the start-up checks of configuration values."""

import pytest

import gin
from hvrnn_tf.utils import validation


@gin.configurable(module="check_test")
def configurable(
  steps: int = 1,
  rate: float = 0.1,
  name: str | None = None,
  flag: bool = False,
  sizes: tuple[int, ...] = (1,),
  anything=None,
):
  return steps, rate, name, flag, sizes, anything


@pytest.mark.parametrize(
  "values",
  [
    dict(steps=3, rate=2, name=None, flag=True, sizes=[1, 2], anything="x"),
    dict(rate=0.5, name="a", sizes=()),
  ],
)
def test_values_of_the_annotated_types_pass(values):
  validation.check_types("check_test.configurable", values, configurable)


@pytest.mark.parametrize(
  "values,message",
  [
    (
      dict(steps="10"),
      "check_test.configurable.steps: expected int, got '10' (str)",
    ),
    (dict(steps=True), "steps: expected int"),
    (dict(steps=1.5), "steps: expected int"),
    (dict(rate="fast"), "rate: expected float"),
    (dict(name=3), "name: expected str | None"),
    (dict(flag=1), "flag: expected bool"),
    (dict(sizes=(1, "2")), "sizes: expected tuple[int, ...]"),
    (dict(sizes=5), "sizes: expected tuple[int, ...]"),
    (dict(steps=gin.REQUIRED), "check_test.configurable.steps must be set"),
  ],
)
def test_wrong_types_name_the_parameter(values, message):
  with pytest.raises(ValueError) as error:
    validation.check_types("check_test.configurable", values, configurable)
  assert message in str(error.value)


def test_gin_bindings_are_checked():
  gin.parse_config("check_test.configurable.rate = 'high'")
  with pytest.raises(ValueError, match="check_test.configurable.rate"):
    validation.check_bindings("check_test.configurable", configurable)


def test_ranges_and_choices():
  validation.check_range("train", "lr", 0.0, minimum=0)
  with pytest.raises(ValueError, match="train.lr"):
    validation.check_range("train", "lr", -1.0, minimum=0)
  with pytest.raises(ValueError, match="train.lr"):
    validation.check_range("train", "lr", float("nan"), minimum=0)
  with pytest.raises(ValueError, match="train.mode"):
    validation.check_choice("train", "mode", "b", ("a",))
