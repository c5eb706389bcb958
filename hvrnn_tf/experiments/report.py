"""A study's report: report.md (tables, the paper's claims checked, plots),
results.json (every number of the report) and the plots elbo.png,
active_units.png and ssim_per_timestep.png."""

import dataclasses
import datetime
import json
import os
import platform

import numpy as np
import tensorflow as tf

from hvrnn_tf.evaluation import plots
from hvrnn_tf.experiments import claims as claims_lib
from hvrnn_tf.experiments import scales
from hvrnn_tf.experiments import studies
from hvrnn_tf.utils import atomic_write

PAPER_N_HID = 64


def now() -> str:
  """The current time, as reports print it."""
  return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _mean_spread(values) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return "–"
  mean = float(np.mean(values))
  digits = 3 if abs(mean) < 10 else 1
  if len(values) == 1:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {np.std(values):.{digits}f}"


def _count_spread(values) -> str:
  """Counts over seeds: "7" when equal, else "6.5 (6–7)"."""
  if min(values) == max(values):
    return str(values[0])
  return f"{np.mean(values):.1f} ({min(values)}–{max(values)})"


def results_table(study: studies.Study, results) -> str:
  lines = [
    "| row | params | train -ELBO | test -ELBO | test NLL | test KL | "
    "test KL per level | active channels per level | maximally active | "
    "SSIM (best of N) | PSNR (best of N) | paper -ELBO train / test | "
    "train time |",
    "|" + "---|" * 13,
  ]
  for row in study.rows:
    runs = list(results.get(row.key, {}).values())
    if not runs:
      continue
    levels = len(runs[0]["active"])
    per_level = lambda name, fmt=_mean_spread, runs=runs, levels=levels: (
      " / ".join(fmt([r[name][level] for r in runs]) for level in range(levels))
    )
    lines.append(
      " | ".join(
        [
          f"| {row.label}",
          f"{runs[0]['num_params'] / 1e3:.0f}k",
          _mean_spread([r["train"]["neg_elbo"] for r in runs]),
          _mean_spread([r["test"]["neg_elbo"] for r in runs]),
          _mean_spread([r["test"]["nll"] for r in runs]),
          _mean_spread([r["test"]["kl"] for r in runs]),
          per_level("kl_per_level"),
          per_level("active", _count_spread)
          + " of "
          + " / ".join(str(c) for c in runs[0]["channels"]),
          per_level("maximally_active", _count_spread),
          _mean_spread([r["ssim"] for r in runs]),
          _mean_spread([r["psnr"] for r in runs]),
          "{} / {}".format(*row.paper_elbo),
          f"{np.mean([r['train_seconds'] for r in runs]) / 60:.1f} min |",
        ]
      )
    )
  return "\n".join(lines)


def per_seed_table(study: studies.Study, results) -> str:
  lines = [
    "| row | seed | train -ELBO | test -ELBO | active per level | "
    "SSIM | PSNR |",
    "|---|---|---|---|---|---|---|",
  ]
  for row in study.rows:
    for seed, r in sorted(results.get(row.key, {}).items()):
      lines.append(
        f"| {row.label} | {seed} | {r['train']['neg_elbo']:.1f} | "
        f"{r['test']['neg_elbo']:.1f} | "
        f"{'/'.join(str(a) for a in r['active'])} | {r['ssim']:.4f} | "
        f"{r['psnr']:.2f} |"
      )
  return "\n".join(lines)


def _plot_elbo(rows, results, path: str) -> None:
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=(1.8 * len(rows) + 3, 3.5), layout="constrained")
  for ax, split in zip(fig.subplots(1, 2), ("train", "test")):
    for i, row in enumerate(rows):
      values = [r[split]["neg_elbo"] for r in results[row.key].values()]
      ax.bar(i, np.mean(values), color="C0", alpha=0.6)
      ax.plot([i] * len(values), values, "k.", markersize=6)
    ax.set_xticks(
      np.arange(len(rows)),
      [r.label for r in rows],
      rotation=20,
      fontsize="small",
    )
    ax.set_title(f"{split} -ELBO (nats/sequence; dots: seeds)")
    values = [
      r[split]["neg_elbo"] for row in rows for r in results[row.key].values()
    ]
    lo, hi = min(values), max(values)
    ax.set_ylim(lo - 0.15 * (hi - lo + 1), hi + 0.15 * (hi - lo + 1))
    ax.grid(axis="y", alpha=0.3)
  plots.write_png(fig, path)


def _plot_active_units(rows, results, path: str) -> None:
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=(1.8 * len(rows) + 2, 3.5), layout="constrained")
  ax = fig.subplots()
  x = np.arange(len(rows))
  max_levels = max(
    len(next(iter(results[r.key].values()))["active"]) for r in rows
  )
  width = 0.8 / max_levels
  for level in range(max_levels):
    means = []
    for row in rows:
      runs = list(results[row.key].values())
      means.append(
        np.mean([r["active"][level] / r["channels"][level] for r in runs])
        if level < len(runs[0]["active"])
        else np.nan
      )
    ax.bar(
      x + (level - (max_levels - 1) / 2) * width,
      means,
      width,
      label=f"level {level + 1}",
    )
  ax.set_xticks(x, [r.label for r in rows], rotation=20, fontsize="small")
  ax.set_ylabel("fraction of channels active (KL > 0.01)")
  ax.set_ylim(0, 1.05)
  ax.legend(fontsize="small")
  plots.write_png(fig, path)


def _plot_ssim_per_timestep(rows, results, path: str) -> None:
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=(5, 3.5), layout="constrained")
  ax = fig.subplots()
  for row in rows:
    curves = np.array(
      [r["ssim_per_timestep"] for r in results[row.key].values()]
    )
    ax.plot(
      np.arange(1, curves.shape[1] + 1),
      curves.mean(0),
      marker="o",
      markersize=3,
      label=row.label,
    )
  ax.set_xlabel("predicted frame")
  ax.set_ylabel("SSIM, best of N (mean over seeds)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize="small")
  plots.write_png(fig, path)


PLOTS = {
  "elbo.png": _plot_elbo,
  "active_units.png": _plot_active_units,
  "ssim_per_timestep.png": _plot_ssim_per_timestep,
}


def write_plots(study: studies.Study, results, out_dir: str) -> list[str]:
  """The PLOTS of the rows that ran, in `out_dir`; returns their names."""
  rows = [r for r in study.rows if results.get(r.key)]
  if not rows:
    return []
  for name, plot in PLOTS.items():
    plot(rows, results, os.path.join(out_dir, name))
  return list(PLOTS)


def _provenance(
  results, command: str, started: str, wall_seconds: float
) -> list[str]:
  """Report lines: who wrote it and the row runs, when, on what machine."""
  runs = [r for per_row in results.values() for r in per_row.values()]
  finished = {}  # command -> times its rows finished
  for r in runs:
    finished.setdefault(r.get("command") or "?", []).append(
      r.get("finished") or "?"
    )
  compute = sum(r["train_seconds"] + r["eval_seconds"] for r in runs) / 60
  return [
    f"- report written {now()} by `{command}` (started {started}, "
    f"{wall_seconds / 60:.1f} min wall time)",
    *[
      f"- {len(times)} row run(s) by `{c}`, finished {min(times)} to "
      f"{max(times)}"
      for c, times in sorted(finished.items())
    ],
    f"- training + evaluation time of the rows reported: {compute:.1f} min",
    f"- machine: {platform.platform()}, {os.cpu_count()} CPU cores visible, "
    f"GPUs: {len(tf.config.list_physical_devices('GPU'))}; "
    f"TensorFlow {tf.__version__}",
  ]


def _settings(
  scale: scales.Scale, dataset: str, results, digits: str
) -> list[str]:
  """Report lines: the scale, data and evaluation settings."""
  seeds = sorted({s for per_row in results.values() for s in per_row})
  any_run = next(r for per_row in results.values() for r in per_row.values())
  data = (
    f"Stochastic Moving MNIST, 2 digits, {scale.image_size}x"
    f"{scale.image_size}, {scale.context_frames} -> "
    f"{scale.future_frames} frames; {digits}"
    if dataset == "smmnist"
    else f"each row's gin data ({digits})"
  )
  return [
    f"- scale: {scale.description}",
    f"- data: {data}",
    f"- steps {scale.num_steps}, batch {scale.batch_size}, n_hid "
    f"{scale.n_hid or PAPER_N_HID}, seeds {seeds}; test: "
    f"{any_run['num_test_sequences']} sequences, best of "
    f"{scale.num_samples} samples; train -ELBO on "
    f"{scale.train_eval_sequences} training-stream sequences",
    "- -ELBO = NLL + KL in nats per sequence (beta = 1), lower is better. "
    "The paper's numbers are on BAIR with the full-size models: compare "
    "directions, not values.",
  ]


def _claim_lines(study: studies.Study, claims) -> list[str]:
  labels = {r.key: r.label for r in study.rows}
  lines = []
  for claim in claims:
    lines.append(f"- **{claim.statement}: {claim.verdict}**")
    lines += [
      f"  - {c.describe(labels)}" for c in claim.comparisons if c.per_seed
    ]
    if claim.note:
      lines.append(f"  - {claim.note}")
  return lines + [
    "",
    "Verdicts count seeds: \"held\" when every seed agrees with the "
    "paper's direction, \"inconclusive\" when seeds disagree. With one or "
    "two seeds and short training, a held claim is weak evidence and a "
    "failed one is not a refutation.",
  ]


def _claim_record(claim) -> dict:
  return {
    "statement": claim.statement,
    "verdict": claim.verdict,
    "note": claim.note,
    "comparisons": [dataclasses.asdict(x) for x in claim.comparisons],
  }


def write_report(
  study: studies.Study,
  scale: scales.Scale,
  dataset: str,
  results,
  out_dir,
  command: str,
  digits: str,
  started: str,
  wall_seconds: float,
) -> str:
  """Writes report.md, results.json and the plots in `out_dir`; returns the
  markdown."""
  claims = claims_lib.check_claims(study, results)
  plots = write_plots(study, results, out_dir)
  lines = [
    f"# Ablation study: {study.title}",
    "",
    *_provenance(results, command, started, wall_seconds),
    *_settings(scale, dataset, results, digits),
    "",
    "## Results (mean ± std over seeds)",
    "",
    results_table(study, results),
    "",
    "Per seed:",
    "",
    per_seed_table(study, results),
    "",
    "## The paper's claims at this scale",
    "",
    *_claim_lines(study, claims),
    "",
  ]
  if plots:
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
  lines += [
    "Per-row outputs: `<row>/seed_<s>/eval_test/` (metrics.json, "
    "per_timestep.png, kl_per_channel.png, sample GIFs).",
    "",
  ]
  markdown = "\n".join(lines)
  atomic_write.write_text(os.path.join(out_dir, "report.md"), markdown)
  record = {
    "study": study.name,
    "command": command,
    "started": started,
    "wall_seconds": wall_seconds,
    "digits": digits,
    "scale": dataclasses.asdict(scale),
    "dataset": dataset,
    "claims": [_claim_record(c) for c in claims],
    "results": results,
  }
  atomic_write.write_text(
    os.path.join(out_dir, "results.json"), json.dumps(record, indent=2)
  )
  return markdown
