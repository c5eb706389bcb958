"""docs/ARCHITECTURE.md and its picture (tools/architecture_diagram.py) name
the packages and paths that exist."""

import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
SUBPACKAGES = sorted(
  p.parent.name for p in (ROOT / "hvrnn_tf").glob("*/__init__.py")
)


def _diagram():
  spec = importlib.util.spec_from_file_location(
    "architecture_diagram", ROOT / "tools" / "architecture_diagram.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _module_exists(dotted: str) -> bool:
  path = ROOT / "hvrnn_tf" / pathlib.Path(*dotted.split("."))
  return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_every_subpackage_is_on_the_page():
  for name in SUBPACKAGES:
    assert f"`hvrnn_tf/{name}/`" in DOC, name


def test_every_path_on_the_page_exists():
  tree = "|".join(("hvrnn_tf", "data_prep", "bench", "gin", "tools", "tests"))
  paths = re.findall(rf"`((?:{tree})/[\w./-]*)`", DOC)
  paths += re.findall(r"\]\(([\w./-]+)\)", DOC)  # links, from docs/
  assert paths
  for path in paths:
    assert (ROOT / "docs" / path).exists() or (ROOT / path).exists(), path


def test_the_pictures_packages_and_modules_exist():
  diagram = _diagram()
  drawn = {name for row in diagram.LAYERS for name, _ in row} - {"binaries"}
  assert drawn == set(SUBPACKAGES) - {"testing"}
  steps = " ".join(diagram.TRAIN_STEP + diagram.EVALUATION)
  modules = re.findall(rf"\b((?:{'|'.join(SUBPACKAGES)})\.\w+)", steps)
  assert modules
  for module in modules:
    assert _module_exists(module), module
  for binary in ("train", "eval", "sample", "export", "convert"):
    assert _module_exists(binary), binary
