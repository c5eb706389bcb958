"""Progress lines for long loops: rate and ETA (training steps, eval sequences)."""

import time


def format_duration(seconds: float) -> str:
  """H:MM:SS."""
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}"


class Progress:
  """Counts work done from `start` towards `total` (None: unknown).

  overall_rate: units per second since construction; report: the rate since
  the previous report and, with a known total, the ETA at that rate.
  """

  def __init__(self, start: int, total: int | None, unit: str = "steps"):
    self.start, self.total, self.unit = start, total, unit
    self.start_time = time.time()
    self.last_done, self.last_time = start, self.start_time

  def overall_rate(self, done: int) -> float:
    return (done - self.start) / max(time.time() - self.start_time, 1e-9)

  def report(self, done: int) -> str:
    """E.g. "2.50 steps/s  ETA 0:01:20"."""
    now = time.time()
    rate = (done - self.last_done) / max(now - self.last_time, 1e-9)
    self.last_done, self.last_time = done, now
    line = f"{rate:.2f} {self.unit}/s"
    if self.total:
      line += f"  ETA {format_duration((self.total - done) / max(rate, 1e-9))}"
    return line
