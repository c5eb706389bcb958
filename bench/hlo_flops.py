"""FLOP counts from XLA HLO text (what a step computes, independent of how it runs).

`function_flops(fn, *args)` lowers a Python/TF function with
`tf.function(fn, jit_compile=True).experimental_get_compiler_ir(*args)(stage="hlo")`
(the HLO before XLA's optimisations, i.e. the model's arithmetic, not
compiled or run) and counts:

  * convolution: 2 x (multiply-adds that touch a real input element), exactly
    as XLA's HloCostAnalysis does: padding and the holes of lhs_dilate (the
    transposed convolutions) are not counted;
  * dot: 2 x output elements x contracted size;
  * elementwise and reduce ops: one operation per output (reduce: input)
    element, reported separately and only as an approximation.

Instructions of computations applied per element (`to_apply=` of reduce,
map, scatter, ...) are skipped; while-loop bodies are counted once (the
result notes it: a train step has no loops, the ConvLSTMs are unrolled).
"""

import collections
import re

import numpy as np

_INSTRUCTION = re.compile(
  r"^\s*(?:ROOT\s+)?%?(?P<name>[^\s=]+)\s*=\s*(?P<type>[a-z]+[0-9]*\[[0-9,]*\])(?:\{[^}]*\})?"
  r"\s+(?P<op>[a-z][a-z0-9\-]*)\((?P<rest>.*)$"
)
_SHAPE = re.compile(r"(?:^|[\s(,])([a-z]+[0-9]*)\[([0-9,]*)\]")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?(?P<name>[^\s(]+)\s*\(.*\{\s*$")
_APPLIED = re.compile(
  r"(?:to_apply|select|scatter|comparator|reducer)=%?([^\s,}]+)"
)

ELEMENTWISE = frozenset(
  [
    "add",
    "subtract",
    "multiply",
    "divide",
    "maximum",
    "minimum",
    "negate",
    "abs",
    "compare",
    "select",
    "clamp",
    "remainder",
    "sign",
    "floor",
    "ceil",
    "round-nearest-afz",
    "round-nearest-even",
    "and",
    "or",
    "xor",
    "not",
  ]
)
TRANSCENDENTAL = frozenset(
  [
    "exponential",
    "exponential-minus-one",
    "log",
    "log-plus-one",
    "logistic",
    "tanh",
    "sqrt",
    "rsqrt",
    "cbrt",
    "power",
    "sine",
    "cosine",
    "tan",
    "erf",
    "atan2",
  ]
)


def _dims(text: str) -> list:
  return [int(d) for d in text.split(",") if d]


def _split_operands(rest: str):
  """(operand text, attribute text) of an instruction's text after 'op('."""
  depth = 1
  for i, ch in enumerate(rest):
    if ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
      if depth == 0:
        return rest[:i], rest[i + 1 :]
  return rest, ""


def _operand_shapes(operands: str) -> list:
  return [_dims(m.group(2)) for m in _SHAPE.finditer(operands)]


def _window(attributes: str, num_spatial: int) -> dict:
  match = re.search(r"window=\{([^}]*)\}", attributes)
  fields = (
    dict(item.split("=", 1) for item in match.group(1).split()) if match else {}
  )

  def per_dim(key, default, parse=int):
    if key not in fields:
      return [default] * num_spatial
    return [parse(v) for v in fields[key].split("x")]

  return {
    "size": per_dim("size", 1),
    "stride": per_dim("stride", 1),
    "pad_low": per_dim("pad", 0, lambda v: int(v.split("_")[0])),
    "lhs_dilate": per_dim("lhs_dilate", 1),
    "rhs_dilate": per_dim("rhs_dilate", 1),
  }


def _valid_pairs(
  out: int,
  kernel: int,
  size_in: int,
  stride: int,
  pad_low: int,
  lhs_dilate: int,
  rhs_dilate: int,
) -> int:
  """Output x kernel positions that land on a real (not padding/hole) input element."""
  o = np.arange(out)[:, None]
  k = np.arange(kernel)[None, :]
  position = o * stride + k * rhs_dilate - pad_low
  valid = (
    (position >= 0)
    & (position <= (size_in - 1) * lhs_dilate)
    & (position % lhs_dilate == 0)
  )
  return int(valid.sum())


def convolution_flops(out_shape, lhs_shape, rhs_shape, attributes: str) -> int:
  labels = re.search(
    r"dim_labels=([0-9a-z]+)_([0-9a-z]+)->([0-9a-z]+)", attributes
  )
  lhs_labels, rhs_labels, out_labels = labels.groups()
  num_spatial = len(out_labels) - 2
  window = _window(attributes, num_spatial)
  macs = out_shape[out_labels.index("b")] * out_shape[out_labels.index("f")]
  macs *= rhs_shape[rhs_labels.index("i")]
  for d in range(num_spatial):
    label = str(d)
    macs *= _valid_pairs(
      out_shape[out_labels.index(label)],
      rhs_shape[rhs_labels.index(label)],
      lhs_shape[lhs_labels.index(label)],
      window["stride"][d],
      window["pad_low"][d],
      window["lhs_dilate"][d],
      window["rhs_dilate"][d],
    )
  return 2 * macs


def dot_flops(out_shape, lhs_shape, attributes: str) -> int:
  match = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", attributes)
  contracted = (
    int(np.prod([lhs_shape[d] for d in _dims(match.group(1))])) if match else 1
  )
  return 2 * int(np.prod(out_shape)) * contracted


_WRAPPERS = ("StatefulPartitionedCall", "PartitionedCall", "gradient_tape")


def _scopes(op_name: str) -> list:
  """The op's name scopes without function-call wrappers and gradient_tape."""
  return [
    s
    for s in op_name.split("/")
    if s not in _WRAPPERS
    and not s.startswith(("StatefulPartitionedCall_", "PartitionedCall_"))
  ]


def is_backward(op_name: str) -> bool:
  return "gradient_tape" in op_name.split("/")


def _component(op_name: str) -> str:
  """Coarse model part from a TF op name (approximate, by Keras name scope)."""
  scope = _scopes(op_name)
  top = scope[0] if scope else ""
  if top.startswith("frame_encoder"):
    return "encoder"
  if top.startswith("decoder") or top.startswith("init_"):
    return "decoder"
  if top.startswith("conv_lstm"):
    return "latent ConvLSTMs"
  if (
    top.startswith("initial_state")
    or top.startswith("conv2d")
    or top.startswith("group_norm")
  ):
    return "latent projections/heads/initial states"
  return "other"


def count_hlo_text(hlo: str) -> dict:
  """FLOP counts of an HLO module's text; see the module docstring."""
  applied = set(_APPLIED.findall(hlo))
  totals = collections.Counter()
  by_component = collections.Counter()
  by_direction = collections.Counter()
  counts = collections.Counter()
  skip = False
  has_while = False
  for line in hlo.splitlines():
    header = _COMPUTATION.match(line)
    if header and "=" not in line.split("(")[0]:
      skip = header.group("name") in applied
      continue
    if skip:
      continue
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    op = match.group("op")
    out_shape = _dims(match.group("type").split("[")[1].rstrip("]"))
    if op == "while":
      has_while = True
    if op in ("convolution", "dot"):
      operands, attributes = _split_operands(match.group("rest"))
      shapes = _operand_shapes(operands)
      if op == "convolution":
        flops = convolution_flops(out_shape, shapes[0], shapes[1], attributes)
      else:
        flops = dot_flops(out_shape, shapes[0], attributes)
      totals[op] += flops
      counts[op] += 1
      op_name = re.search(r'op_name="([^"]*)"', attributes)
      op_name = op_name.group(1) if op_name else ""
      by_component[_component(op_name)] += flops
      by_direction["backward" if is_backward(op_name) else "forward"] += flops
    elif op in ELEMENTWISE:
      totals["elementwise"] += int(np.prod(out_shape))
    elif op in TRANSCENDENTAL:
      totals["transcendental"] += int(np.prod(out_shape))
    elif op == "reduce":
      operands, _ = _split_operands(match.group("rest"))
      shapes = _operand_shapes(operands)
      if shapes:
        totals["reduce"] += int(np.prod(shapes[0]))
  matmul = totals["convolution"] + totals["dot"]
  return {
    "flops": matmul,  # convolution + dot: the standard "model FLOPs"
    "convolution_flops": totals["convolution"],
    "dot_flops": totals["dot"],
    "num_convolutions": counts["convolution"],
    "num_dots": counts["dot"],
    "elementwise_ops": totals["elementwise"],
    "transcendental_ops": totals["transcendental"],
    "reduce_input_elements": totals["reduce"],
    "flops_by_component": dict(by_component),
    "flops_by_direction": dict(by_direction),
    "while_bodies_counted_once": has_while,
  }


def hlo_text(fn, *args) -> str:
  """Pre-optimisation HLO of `fn(*args)` (lowered by XLA; nothing runs)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  compiled = tf.function(fn, jit_compile=True)
  return compiled.experimental_get_compiler_ir(*args)(stage="hlo")


def function_flops(fn, *args) -> dict:
  return count_hlo_text(hlo_text(fn, *args))


def train_step_flops(trainer, video) -> dict:
  """function_flops of the train step of `trainer`'s configs: the model's FLOPs.

  hvrnn_tf.ops.shared_kernel computes the recurrent convolutions of small maps
  as dots over k x k patches, whose rows include the zero padding; counted on
  a Trainer of the same configs whose ConvLSTMs convolve every map size
  (ModelConfig.patch_matmul_max_rows (0, 0, 0)), the count is that of the
  convolutions, padding not counted, whichever path `trainer` runs.
  """
  import dataclasses  # pylint: disable=g-import-not-at-top

  from hvrnn_tf.ops import speed_paths  # pylint: disable=g-import-not-at-top
  from hvrnn_tf.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  convolutions = trainer_lib.Trainer(
    dataclasses.replace(
      trainer.config, patch_matmul_max_rows=speed_paths.CONVOLUTIONS_ONLY
    ),
    trainer.train_config,
    trainer.strategy,
  )
  return function_flops(convolutions.train_step.python_function, video)
