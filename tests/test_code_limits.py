"""Size limits for the next engineer (docs/ARCHITECTURE.md): no function in
hvrnn_tf/, data_prep/ or bench/ (its tests included) over 60 lines of body
(docstring excluded), no module over 450 lines."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("hvrnn_tf", "data_prep", "bench")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 450


def _modules():
  for package in PACKAGES:
    yield from sorted((ROOT / package).rglob("*.py"))


def _body_lines(function: ast.FunctionDef) -> int:
  """Lines from `def` to the end, less the docstring's (the signature counts)."""
  lines = function.end_lineno - function.lineno + 1
  first = function.body[0]
  if (
    isinstance(first, ast.Expr)
    and isinstance(first.value, ast.Constant)
    and isinstance(first.value.value, str)
  ):
    lines -= first.end_lineno - first.lineno + 1
  return lines


def test_no_function_is_longer_than_the_limit():
  long = []
  for path in _modules():
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = _body_lines(node)
        if lines > MAX_FUNCTION_LINES:
          long.append(
            f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
            f"({lines} lines)"
          )
  assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_no_module_is_longer_than_the_limit():
  long = [
    f"{path.relative_to(ROOT)} ({n} lines)"
    for path in _modules()
    if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
  ]
  assert not long, "modules over 450 lines:\n" + "\n".join(long)


def test_the_measure_counts_body_lines_without_the_docstring():
  function = ast.parse(
    'def f():\n  """Doc.\n\n  More."""\n  a = 1\n  return a\n'
  ).body[0]
  assert _body_lines(function) == 3  # def, assignment, return
