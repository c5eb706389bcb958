"""Tests of the progress line: rate, ETA, unknown totals."""

from hvrnn_tf.training import progress as progress_lib


def test_duration_is_hours_minutes_seconds():
  assert progress_lib.format_duration(3725.9) == "1:02:05"
  assert progress_lib.format_duration(59) == "0:00:59"


def test_report_gives_the_rate_since_the_last_report_and_the_eta():
  progress = progress_lib.Progress(start=0, total=100)
  progress.last_time -= 10.0  # the previous report was 10 s ago
  report = progress.report(10)
  rate = float(report.split()[0])
  assert 0.9 < rate <= 1.0 and "steps/s  ETA 0:01:" in report
  progress.start_time -= 20.0
  assert 0.45 < progress.overall_rate(10) <= 0.5  # 10 steps in >= 20 s


def test_without_a_total_there_is_no_eta():
  progress = progress_lib.Progress(start=5, total=None, unit="sequences")
  progress.last_time -= 2.0
  assert progress.report(9).endswith("sequences/s")
