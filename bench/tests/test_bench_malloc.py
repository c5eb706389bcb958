"""bench.malloc: one child per allocator, interleaved steps, faults and RSS in the JSON."""

import json

import pytest

from bench import malloc
from hvrnn_tf.utils import allocator


def test_unknown_allocators_are_named():
  with pytest.raises(ValueError, match="mimalloc"):
    malloc.main(["--allocators=system,mimalloc"])


def test_child_env_preloads_the_named_allocator():
  assert "tcmalloc" not in malloc.child_env("system").get("LD_PRELOAD", "")
  tcmalloc = malloc.child_env("tcmalloc")
  if allocator.find_tcmalloc() is None:
    assert tcmalloc is None
  else:
    assert "tcmalloc" in tcmalloc["LD_PRELOAD"]
    assert tcmalloc[allocator.TF_SYSTEM_ALLOCATOR_ENV] == "1"
    pool = malloc.child_env("tcmalloc_pool")
    assert pool["LD_PRELOAD"] == tcmalloc["LD_PRELOAD"]
    assert pool[allocator.TF_SYSTEM_ALLOCATOR_ENV] == "0"


@pytest.mark.slow  # two children building a small model: ~40 s
def test_malloc_bench_writes_json(tmp_path):
  out = tmp_path / "malloc.json"
  malloc.main(
    [
      "--allocators=system,tcmalloc",
      "--n_hid=16",
      "--future_frames=1",
      "--repeats=2",
      f"--output={out}",
    ]
  )
  record = json.loads(out.read_text())
  assert record["settings"]["allocators"] == "system,tcmalloc"
  results = {r["allocator"]: r for r in record["results"]}
  expected = {"system"} | (
    {"tcmalloc"} if allocator.find_tcmalloc() is not None else set()
  )
  assert set(results) == expected
  for name, result in results.items():
    assert result["status"] == "ok"
    assert len(result["runs_s"]) == 2 and min(result["runs_s"]) > 0
    assert len(result["minor_faults_per_step"]) == 2
    assert result["info"]["allocator_mapped"] == name
    assert result["info"]["peak_rss_bytes"] > 0
