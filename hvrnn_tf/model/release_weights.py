"""The authors' PyTorch state dicts (s2s_big_hier_v4, s2s_big_hier_128) as our weights.

`mapping(model)` names, for every variable of a built HierarchicalVRNN, the
release tensor it comes from, in the release's module layout:
  emb_net.<i>              encoder: 0 the stem conv, then the ResBlocks, one
                           index per block and per pooling layer between them;
  render_net.<2i>          decoder stage i (ConvLSTM or DcConv), with
  render_net.<2i - 1>      the DcUpConv before it, then the DcConv and the
                           output conv;
  det_init_nets.layer_<e>  decoder initial-state nets,
  {prior,posterior}_init_nets.layer_<e>, {prior,posterior}_branches.layer_<e>
                           latent levels,
where e is the index in emb_net of the encoder block whose output the level
or stage reads (16 = 1x1, 10 = 8x8, 4 = 32x32 in the 64x64 model). The
release's `det_init_net` is built but never called: it has no counterpart.

Layouts: PyTorch convolution weights are [out, in, kh, kw] and transposed
ones [in, out, kh, kw]; Keras's are [kh, kw, in, out] and [kh, kw, out, in],
so both take the permutation (2, 3, 1, 0). The release's plain ConvLSTM has
one convolution over concat(x, h); ours splits it by input channels
(convlstm.ConvLSTM), so that tensor fills two variables.
"""

import dataclasses

import numpy as np

UNUSED_PREFIX = "det_init_net."
DATA_PARALLEL_PREFIX = "module."


class ConversionError(ValueError):
  """A state dict does not fit the configured model; the message names the tensor."""


@dataclasses.dataclass(frozen=True)
class Target:
  """A variable filled from a release tensor, or from input channels
  `channels` (a slice of its axis 1) of it."""

  variable: object
  channels: slice | None = None


def _conv(prefix, conv, channels=None):
  out = {f"{prefix}.weight": [Target(conv.kernel, channels)]}
  if conv.bias is not None:
    out[f"{prefix}.bias"] = [Target(conv.bias)]
  return out


def _norm(prefix, norm):
  return {
    f"{prefix}.weight": [Target(norm.gamma)],
    f"{prefix}.bias": [Target(norm.beta)],
  }


def _resblock(prefix, block):
  out = {
    **_conv(f"{prefix}.conv_0.0", block.conv1),
    **_norm(f"{prefix}.conv_0.1", block.norm1),
    **_conv(f"{prefix}.conv_1.0", block.conv2),
    **_norm(f"{prefix}.conv_1.1", block.norm2),
  }
  if block.shortcut is not None:
    out.update(_conv(f"{prefix}.conv_s", block.shortcut))
  return out


def _conv_norm(prefix, layer):
  """DcConv and DcUpConv: main.0 the convolution, main.1 the GroupNorm."""
  return {
    **_conv(f"{prefix}.main.0", layer.conv),
    **_norm(f"{prefix}.main.1", layer.norm),
  }


def _convlstm(prefix, lstm):
  if not lstm.normalized:
    inputs = lstm.input_conv.kernel.shape[2]
    gates = f"{prefix}.model.gates"
    out = _conv(gates, lstm.input_conv, slice(0, inputs))
    out[f"{gates}.weight"].append(
      Target(lstm.hidden_conv.kernel, slice(inputs, None))
    )
    return out
  return {
    **_conv(f"{prefix}.model.ih_gates.0", lstm.input_conv),
    **_norm(f"{prefix}.model.ih_gates.1", lstm.input_norm),
    **_conv(f"{prefix}.model.hh_gates.0", lstm.hidden_conv),
    **_norm(f"{prefix}.model.hh_gates.1", lstm.hidden_norm),
    **_norm(f"{prefix}.model.c_norm", lstm.cell_norm),
  }


def _initial_state(prefix, net):
  return {
    **_conv_norm(f"{prefix}.0", net.mix),
    **_conv(f"{prefix}.1.model", net.out),
    **_norm(f"{prefix}.2.model", net.norm),
  }


def encoder_indices(encoder):
  """({resolution: emb_net index of its last block}, [(index, block)])."""
  index, last, blocks = 1, {}, []
  for stage_number, (resolution, stage) in enumerate(
    zip(encoder.resolutions, encoder.stages)
  ):
    index += stage_number > 0  # the pooling layer before the stage
    for block in stage:
      blocks.append((index, block))
      index += 1
    last[resolution] = index - 1
  return last, blocks


def _encoder(encoder):
  out = _conv("emb_net.0", encoder.stem)
  for index, block in encoder_indices(encoder)[1]:
    out.update(_resblock(f"emb_net.{index}", block))
  return out


def _latents(latents, emb):
  out = {}
  for kind, networks in latents.networks.items():
    for resolution, net in zip(latents.resolutions, networks):
      layer = f"layer_{emb[resolution]}"
      branch = f"{kind}_branches.{layer}"
      out.update(_initial_state(f"{kind}_init_nets.{layer}", net.initial_state))
      out.update(_conv(f"{branch}.0.model", net.project))
      out.update(_norm(f"{branch}.1.model", net.norm))
      out.update(_convlstm(f"{branch}.2", net.lstm))
      out.update(_conv(f"{branch}.3.model", net.head))
      out.update(_norm(f"{branch}.4.model", net.head_norm))
  return out


def _decoder(decoder, emb):
  out = {}
  for i, (resolution, stage) in enumerate(
    zip(decoder.resolutions, decoder.stages)
  ):
    if i > 0:
      out.update(
        _conv_norm(f"render_net.{2 * i - 1}", decoder.upsamplers[i - 1])
      )
    if i < decoder.num_recurrent:
      out.update(_convlstm(f"render_net.{2 * i}", stage))
      out.update(
        _initial_state(
          f"det_init_nets.layer_{emb[resolution]}", decoder.initial_states[i]
        )
      )
    else:
      out.update(_conv_norm(f"render_net.{2 * i}", stage))
  last = 2 * len(decoder.stages) - 1
  out.update(_conv_norm(f"render_net.{last}", decoder.out_block))
  out.update(_conv(f"render_net.{last + 1}.model", decoder.out_conv))
  return out


def mapping(model) -> dict[str, list[Target]]:
  """{release tensor name: [Target]} for a built HierarchicalVRNN."""
  emb, _ = encoder_indices(model.encoder)
  return {
    **_encoder(model.encoder),
    **_latents(model.latents, emb),
    **_decoder(model.decoder, emb),
  }


def release_shape(targets: list[Target]) -> tuple[int, ...]:
  """The shape of the release tensor that fills `targets`."""
  shape = tuple(targets[0].variable.shape)
  if len(shape) == 1:
    return shape
  kh, kw, _, outputs = shape
  inputs = sum(t.variable.shape[2] for t in targets)
  return (outputs, inputs, kh, kw)


def manifest(model) -> dict[str, list[int]]:
  """{release tensor name: shape} that `model` expects (no torch needed)."""
  return {k: list(release_shape(t)) for k, t in mapping(model).items()}


def strip_prefix(state: dict) -> dict:
  """Drops DataParallel's `module.` prefix from every key that has it."""
  n = len(DATA_PARALLEL_PREFIX)
  return {
    k[n:] if k.startswith(DATA_PARALLEL_PREFIX) else k: v
    for k, v in state.items()
  }


def check(model, state: dict) -> list[str]:
  """Checks that `state` fills every variable of `model`, each tensor used once.

  Returns:
    the names skipped: the release's never-called det_init_net.
  Raises:
    ConversionError: naming the first missing, unexpected or misshapen tensor.
  """
  expected = mapping(model)
  for name, targets in expected.items():
    if name not in state:
      raise ConversionError(
        f"release tensor {name} (shape {release_shape(targets)}) is missing "
        "from the state dict: is it another model?"
      )
    found = tuple(np.shape(state[name]))
    if found != release_shape(targets):
      raise ConversionError(
        f"release tensor {name}: expected shape {release_shape(targets)}, "
        f"found {found} (another width, image size or context length?)"
      )
  skipped = sorted(k for k in state if k.startswith(UNUSED_PREFIX))
  unexpected = sorted(set(state) - set(expected) - set(skipped))
  if unexpected:
    raise ConversionError(
      f"release tensor {unexpected[0]} (shape {tuple(np.shape(state[unexpected[0]]))}) "
      f"has no counterpart in the configured model ({len(unexpected)} such)"
    )
  return skipped


def keras_layout(targets: list[Target], value) -> list:
  """The release tensor `value` as each of its targets lays it out."""
  parts = []
  for target in targets:
    part = value if target.channels is None else value[:, target.channels]
    parts.append(part.transpose(2, 3, 1, 0) if part.ndim == 4 else part)
  return parts


def assign(model, state: dict) -> list[str]:
  """Fills `model`'s variables from `state` ({name: array}); returns the
  names skipped. Checks everything first (`check`): on error nothing changes."""
  state = strip_prefix(state)
  skipped = check(model, state)
  for name, targets in mapping(model).items():
    value = np.asarray(state[name], dtype=np.float32)
    for target, part in zip(targets, keras_layout(targets, value)):
      target.variable.assign(part)
  return skipped
