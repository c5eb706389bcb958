"""bench.peer's record -> side-by-side rows, issue 16's targets and tables.

Pure functions of the JSON record, so that `python -m bench.peer
--from_json=...` recomputes them for an earlier run.
"""

import datetime
import json
import statistics

GIB = 2**30
RELEASE, OURS = "release", "ours"


def _train_row(batch, release, ours, peak) -> dict:
  """The release and ours at one batch size: ratios, fractions of the peak."""
  flops = ours.get("flop_count", {}).get("flops")
  rt, ot = release["timing"], ours["timing"]
  row = {
    "batch_size": batch,
    "release_s": rt["median_s"],
    "ours_s": ot["median_s"],
    "train_speedup": rt["median_s"] / ot["median_s"],
    "train_speedup_of_minima": rt["min_s"] / ot["min_s"],
    # Round by round (release, then ours, at about the same load).
    "paired_speedups": [r / o for r, o in zip(rt["runs_s"], ot["runs_s"])],
    "model_flops": flops,
    "release_torch_flops": release.get("flop_count", {}).get("flops"),
    "release_peak_rss_bytes": release["peak_rss_bytes"],
    "ours_peak_rss_bytes": ours["peak_rss_bytes"],
    "peak_rss_ours_over_release": ours["peak_rss_bytes"]
    / release["peak_rss_bytes"],
  }
  row["train_speedup_paired_median"] = statistics.median(row["paired_speedups"])
  row["train_speedup_conservative"] = min(
    row["train_speedup"],
    row["train_speedup_of_minima"],
    row["train_speedup_paired_median"],
  )
  for name, entry in ((RELEASE, release), (OURS, ours)):
    if flops and peak:
      row[f"{name}_fraction_of_matmul_peak"] = flops / row[f"{name}_s"] / peak
      row[f"{name}_fraction_of_matmul_peak_fastest_step"] = (
        flops / entry["timing"]["min_s"] / peak
      )
  return row


def derive(record) -> None:
  """Adds the side-by-side train rows, the sampling ratio and the issue's targets."""
  peaks = [p["flops_per_s"] for p in record["peaks"] if "flops_per_s" in p]
  record["peak_flops_per_s"] = peak = max(peaks) if peaks else None
  ok = {
    (r["section"], r["implementation"], r.get("batch_size")): r
    for r in record["results"]
    if r["status"] == "ok"
  }
  rows = []
  for batch in record["settings"]["batches"]:
    release = ok.get(("train", RELEASE, batch))
    ours = ok.get(("train", OURS, batch))
    if release and ours:
      rows.append(_train_row(batch, release, ours, peak))
  record["train_comparison"] = rows
  release = ok.get(("sampling", RELEASE, None))
  ours = ok.get(("sampling", OURS, None))
  record["sampling_speedup_per_test_sequence"] = (
    release["seconds_per_test_sequence"] / ours["seconds_per_test_sequence"]
    if release and ours
    else None
  )
  record["targets"] = targets(
    rows, record["sampling_speedup_per_test_sequence"]
  )


def targets(rows, sampling_speedup) -> list:
  """Issue 16's CPU targets, each {target, value, unit, met}."""
  out = []
  add = lambda text, value, met, unit: out.append(
    {"target": text, "value": value, "unit": unit, "met": bool(met)}
  )
  for row in rows:
    b = row["batch_size"]
    speedup = row["train_speedup_conservative"]
    add(
      f"train step >= 1.3x faster than the release, batch {b}",
      speedup,
      speedup >= 1.3,
      "x (least of the 3 ratios)",
    )
    fraction = row.get("ours_fraction_of_matmul_peak")
    if fraction is not None:
      add(
        f"ours >= 45% of the fp32 matmul peak, batch {b}",
        fraction,
        fraction >= 0.45,
        "of peak",
      )
    if b == 2:
      add(
        "peak memory at batch 2 <= the release's",
        row["peak_rss_ours_over_release"],
        row["peak_rss_ours_over_release"] <= 1,
        "ours / release",
      )
  if sampling_speedup is not None:
    add(
      "BAIR-protocol sampling >= 10x faster per test sequence",
      sampling_speedup,
      sampling_speedup >= 10,
      "x",
    )
  return out


def _table(columns, rows) -> str:
  # bench.common imports TensorFlow, which bench.peer's parent process avoids.
  from bench import common  # pylint: disable=g-import-not-at-top

  return common.markdown_table(columns, rows)


def _giga(x):
  return None if x is None else x / 1e9


def _gib(x):
  return None if x is None else x / GIB


def _parameter_table(p) -> str:
  return _table(
    ["model", "parameters", "note"],
    [
      ["ours (hvrnn_tf, gin/bair.gin)", p.get(OURS), ""],
      [
        "release, given a gradient by a train step",
        p.get("release_with_gradient"),
        f"equal to ours: {p.get('agree')}",
      ],
      [
        "release, total",
        p.get("release_total"),
        "never called: "
        + ", ".join(p.get("release_modules_without_gradient", [])),
      ],
    ],
  )


TRAIN_COLUMNS = [
  "batch",
  "release s/step",
  "ours s/step",
  "speed-up (medians)",
  "(minima)",
  "(paired, median)",
  "model GFLOP/step (XLA)",
  "release GFLOP (torch count)",
  "release of matmul peak",
  "ours of matmul peak",
  "(ours, fastest step)",
  "release peak RSS (GiB)",
  "ours peak RSS (GiB)",
]


def _train_table(rows) -> str:
  return _table(
    TRAIN_COLUMNS,
    [
      [
        r["batch_size"],
        r["release_s"],
        r["ours_s"],
        r["train_speedup"],
        r["train_speedup_of_minima"],
        r["train_speedup_paired_median"],
        _giga(r["model_flops"]),
        _giga(r["release_torch_flops"]),
        r.get("release_fraction_of_matmul_peak"),
        r.get("ours_fraction_of_matmul_peak"),
        r.get("ours_fraction_of_matmul_peak_fastest_step"),
        _gib(r["release_peak_rss_bytes"]),
        _gib(r["ours_peak_rss_bytes"]),
      ]
      for r in rows
    ],
  )


SAMPLING_COLUMNS = [
  "sampler",
  "samples per call",
  "passes timed",
  "s per timed call",
  "s per call (all F passes)",
  "samples per test sequence",
  "s per test sequence",
  "extrapolated",
  "peak RSS so far (GiB)",
]


def _sampling_table(results) -> list:
  """The sampling section's table, or none when it did not run."""
  rows = [
    [
      r["implementation"],
      r["samples_per_call"],
      r.get("passes_timed") or "all",
      r["timing"]["median_s"],
      r["seconds_per_call"],
      r["protocol_samples"],
      r["seconds_per_test_sequence"],
      "yes" if r["extrapolated"] else "no",
      _gib(r["peak_rss_bytes"]),
    ]
    for r in results
    if r["section"] == "sampling" and r["status"] == "ok"
  ]
  return [_table(SAMPLING_COLUMNS, rows)] if rows else []


def tables(record) -> list:
  """The record's Markdown tables, then one line per failed section."""
  peaks = _table(
    ["matmul reference", "when", "GFLOP/s"],
    [
      [
        p.get("kind", p["child"]),
        p["when"],
        _giga(p.get("flops_per_s")) or p.get("error"),
      ]
      for p in record["peaks"]
    ],
  )
  goals = _table(
    ["issue-16 target", "measured", "unit", "met"],
    [
      [t["target"], t["value"], t["unit"], "yes" if t["met"] else "NO"]
      for t in record["targets"]
    ],
  )
  failed = [
    f"FAILED {r['section']} b{r.get('batch_size')}: {r['error']}"
    for r in record["results"]
    if r["status"] != "ok"
  ]
  return [
    _parameter_table(record["parameters"]),
    _train_table(record["train_comparison"]),
    *_sampling_table(record["results"]),
    peaks,
    goals,
    *failed,
  ]


def rederive(path: str) -> dict:
  """Recomputes the ratios, targets and tables of an earlier run's JSON, in place."""
  with open(path) as f:
    record = json.load(f)
  derive(record)
  record["tables_markdown"] = tables(record)
  record["rederived_utc"] = datetime.datetime.now(datetime.UTC).isoformat(
    timespec="seconds"
  )
  from bench import common  # pylint: disable=g-import-not-at-top

  common.write_record({**record, "output": path})
  print("\n\n".join(record["tables_markdown"]))
  return record
