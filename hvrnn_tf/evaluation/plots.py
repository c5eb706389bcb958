"""Matplotlib figures of evaluation results, written as PNG files.

Figures are built with matplotlib.figure.Figure (no pyplot state, no display
needed) and written through tf.io.gfile (any TF filesystem).
"""

import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
import numpy as np

from hvrnn_tf.evaluation.metrics import kl
from hvrnn_tf.utils import atomic_write

_KL_FLOOR = 1e-6


def write_png(fig: Figure, path: str, dpi: int = 100) -> None:
  """Writes `fig` as a PNG file at `path` (atomically, any TF filesystem)."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=dpi)
  atomic_write.write_bytes(path, buffer.getvalue())


def plot_per_timestep(
  curves: dict, first_frame: int, path: str, num_samples: int
) -> None:
  """One panel per metric: best-of-N score against predicted frame index.

  Args:
    curves: metric name -> [T] scores of predicted frames (test-set means).
    first_frame: 1-based index of the first predicted frame (c + 1).
    path: PNG file to write.
    num_samples: N, for the title.
  """
  plot_runs_per_timestep({"": curves}, first_frame, path, num_samples)


def plot_runs_per_timestep(
  runs: dict, first_frame: int, path: str, num_samples: int
) -> None:
  """Like `plot_per_timestep`, one line per run (legend from the run names).

  Args:
    runs: run name -> {metric name -> [T] scores}; the panels are the metrics
      of the first run, and every run must have them. One unnamed run ("")
      gets no legend.
  """
  if not runs or not next(iter(runs.values())):
    raise ValueError("no curves to plot")
  metrics = list(next(iter(runs.values())))
  fig = Figure(figsize=(4 * len(metrics), 3.2), layout="constrained")
  axes = fig.subplots(1, len(metrics), squeeze=False)[0]
  for ax, name in zip(axes, metrics):
    for run, curves in runs.items():
      if name not in curves:
        raise ValueError(f"run {run!r} has no {name!r} curve")
      frames = np.arange(first_frame, first_frame + len(curves[name]))
      ax.plot(frames, curves[name], marker="o", markersize=3, label=run)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("predicted frame")
    ax.set_ylabel(name.upper())
    ax.set_title(f"{name.upper()}, best of {num_samples}")
    ax.grid(alpha=0.3)
  if len(runs) > 1 or "" not in runs:
    fig.legend(
      *axes[0].get_legend_handles_labels(),
      loc="outside lower center",
      ncols=len(runs),
      fontsize="small",
    )
  write_png(fig, path)


def plot_kl_per_channel(kl_per_channel: list, resolutions, path: str) -> None:
  """The paper's Fig. 4: per level, average KL of each channel, sorted.

  Log scale; channels with KL below 1e-6 are drawn at 1e-6.

  Args:
    kl_per_channel: per level (top first) mean KL per channel [Z_l].
    resolutions: per level spatial size, for the titles.
    path: PNG file to write.
  """
  if not kl_per_channel or len(kl_per_channel) != len(resolutions):
    raise ValueError(
      f"{len(kl_per_channel)} KL levels but resolutions {list(resolutions)}"
    )
  units = kl.active_units(kl_per_channel)
  fig = Figure(figsize=(4 * len(kl_per_channel), 3.5), layout="constrained")
  axes = fig.subplots(1, len(kl_per_channel), squeeze=False)[0]
  for level, (ax, values, r) in enumerate(
    zip(axes, kl_per_channel, resolutions)
  ):
    values = np.sort(np.asarray(values))[::-1]
    ax.bar(np.arange(len(values)), np.maximum(values, _KL_FLOOR), width=0.9)
    ax.set_yscale("log")
    for threshold, style, label in (
      (kl.ACTIVE_THRESHOLD, "--", "active"),
      (kl.MAX_ACTIVE_THRESHOLD, ":", "maximally active"),
    ):
      ax.axhline(
        threshold,
        color="k",
        linestyle=style,
        linewidth=0.8,
        label=f"{label} (> {threshold})",
      )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("channel (sorted)")
    ax.set_ylabel("average KL (nats)")
    ax.set_title(
      f"level {level + 1} ({r}x{r}): "
      f"{units['active'][level]}/{len(values)} active, "
      f"{units['maximally_active'][level]} max"
    )
  fig.legend(
    *axes[0].get_legend_handles_labels(),
    loc="outside lower center",
    ncols=2,
    fontsize="small",
  )
  write_png(fig, path)
