"""Start-up checks of configuration values, with messages that name the parameter.

Gin passes whatever a binding says (`train.num_steps = "10"`), and a value of
the wrong type otherwise fails much later with a TypeError that names no
parameter. These checks run before any expensive work.
"""

import math
import types
import typing

import gin


def _describe(value) -> str:
  return f"{value!r} ({type(value).__name__})"


def _matches(value, annotation) -> bool | None:
  """Whether `value` fits `annotation`; None for annotations not checked."""
  if annotation is typing.Any:
    return None
  origin = typing.get_origin(annotation)
  if origin in (typing.Union, types.UnionType):
    results = [_matches(value, a) for a in typing.get_args(annotation)]
    if any(r is None for r in results):
      return None
    return any(results)
  if annotation is type(None):
    return value is None
  if annotation is bool:
    return isinstance(value, bool)
  if annotation is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if annotation is float:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if annotation is str:
    return isinstance(value, str)
  if origin is tuple:
    args = typing.get_args(annotation)
    if not isinstance(value, (tuple, list)):
      return False
    if len(args) == 2 and args[1] is Ellipsis:
      return all(_matches(v, args[0]) is not False for v in value)
    return len(args) == len(value) and all(
      _matches(v, a) is not False for v, a in zip(value, args)
    )
  return None


def _type_name(annotation) -> str:
  if typing.get_origin(annotation) is None and hasattr(annotation, "__name__"):
    return annotation.__name__
  return str(annotation).replace("typing.", "")


def check_types(owner: str, values: dict, function_or_class) -> None:
  """Checks `values` against the type annotations of `function_or_class`.

  Args:
    owner: how the parameters are named in messages, e.g. "train" or
      "model.ModelConfig" (the gin names).
    values: parameter name -> value.
    function_or_class: whose annotations to use.
  Raises:
    ValueError: "owner.name: expected int, got '10' (str)" for the first
      mismatch. Unset gin.REQUIRED values are reported as missing.
  """
  hints = typing.get_type_hints(function_or_class)
  for name, value in values.items():
    if value is gin.REQUIRED:
      raise ValueError(
        f"{owner}.{name} must be set (e.g. --gin_param={owner}.{name}=...)"
      )
    if name not in hints:
      continue
    if _matches(value, hints[name]) is False:
      raise ValueError(
        f"{owner}.{name}: expected {_type_name(hints[name])}, "
        f"got {_describe(value)}"
      )


def check_bindings(owner: str, configurable) -> None:
  """`check_types` on the gin bindings of `configurable` (a gin configurable)."""
  check_types(owner, gin.get_bindings(configurable), configurable)


def check_range(
  owner: str, name: str, value, minimum=None, maximum=None, finite: bool = True
) -> None:
  """Raises ValueError naming `owner.name` unless minimum <= value <= maximum."""
  if finite and isinstance(value, float) and not math.isfinite(value):
    raise ValueError(f"{owner}.{name} must be finite (got {value!r})")
  if minimum is not None and value < minimum:
    raise ValueError(f"{owner}.{name} must be >= {minimum} (got {value!r})")
  if maximum is not None and value > maximum:
    raise ValueError(f"{owner}.{name} must be <= {maximum} (got {value!r})")


def check_choice(owner: str, name: str, value, choices) -> None:
  if value not in choices:
    raise ValueError(
      f"{owner}.{name}={value!r}; expected one of {tuple(choices)}"
    )
