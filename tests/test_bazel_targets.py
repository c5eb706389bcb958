"""The Bazel BUILD files keep up with the code (no Bazel needed: read as text).

Every test_*.py of tests/ and bench/tests/ has a py_test, every module of hvrnn_tf/, data_prep/ and
bench/ (not bench/tests/) a py_library or py_binary in its folder's BUILD, every module with a
`__main__` block a binary, and each target's deps name the targets of the
project modules its sources import, also through a subprocess (`python -m
MODULE`, or Python source in a string); else `bazel test //...` fails with an
ImportError, or keeps a cached result, that `pytest` never sees.

BUILD files are Starlark, whose syntax here is a subset of Python's: they are
parsed with `ast` and only literal arguments are read. The macros of
tools/bazel/defs.bzl: `pytest_test(name=N)` in PKG/BUILD is a py_test of PKG/N.py
(plus `srcs`) run by tests/bazel_pytest_main.py; `py_cli(name, module, deps)` is a binary running `module`.
"""

import ast
import dataclasses
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = (
  "hvrnn_tf",
  "data_prep",
  "bench",
)  # every .py below each needs a target
TESTS = ("tests", "bench/tests")  # test folders: pytest_test, not py_library
PYTEST_MAIN = "tests/bazel_pytest_main.py"
RULES = ("py_library", "py_binary", "py_test", "pytest_test", "py_cli")


@dataclasses.dataclass
class Target:
  package: str  # "hvrnn_tf/data"
  rule: str
  name: str
  srcs: list[str]  # workspace-relative paths
  deps: set[str]  # absolute labels, "//pkg:name"
  module: str | None = None  # py_cli's

  @property
  def label(self) -> str:
    return f"//{self.package}:{self.name}"


def _literal(node: ast.expr, default):
  try:
    return ast.literal_eval(node)
  except (
    ValueError,
    TypeError,
    SyntaxError,
  ):  # glob(...), select(...): not checked
    return default


def _absolute(label: str, package: str) -> str:
  if label.startswith(":"):
    return f"//{package}{label}"
  if label.startswith("//") and ":" not in label:
    return f"{label}:{label.rsplit('/', 1)[-1]}"
  return label


def _targets_of(build: pathlib.Path) -> list[Target]:
  package = build.parent.relative_to(ROOT).as_posix().lstrip(".")
  tree = ast.parse(build.read_text(), filename=str(build))
  targets = []
  for statement in tree.body:
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not (
      isinstance(call, ast.Call)
      and isinstance(call.func, ast.Name)
      and call.func.id in RULES
    ):
      continue
    kwargs = {k.arg: _literal(k.value, None) for k in call.keywords}
    name, rule = kwargs["name"], call.func.id
    srcs = list(kwargs.get("srcs") or [])
    deps = {_absolute(d, package) for d in kwargs.get("deps") or []}
    if rule == "pytest_test":  # tools/bazel/defs.bzl
      srcs = [f"{name}.py", *srcs]
      deps.add(f"//{package}:conftest")
    paths = [f"{package}/{s}" for s in srcs if ":" not in s]
    if rule == "pytest_test":
      paths.append(PYTEST_MAIN)
    targets.append(
      Target(
        package,
        rule,
        name,
        paths,
        deps,
        kwargs.get("module"),
      )
    )
  return targets


def _all_targets() -> list[Target]:
  targets = []
  for folder, subfolders, files in os.walk(ROOT):
    # Not: .venv, .git, Bazel's output links, the stand-in repositories.
    subfolders[:] = sorted(
      d
      for d in subfolders
      if not d.startswith((".", "bazel-"))
      and d not in ("third_party", "__pycache__")
    )
    if "BUILD" in files:
      targets += _targets_of(pathlib.Path(folder) / "BUILD")
  return targets


def _modules() -> list[str]:
  return sorted(
    p.relative_to(ROOT).as_posix()
    for package in PACKAGES
    for p in (ROOT / package).rglob("*.py")
    if not p.relative_to(ROOT).as_posix().startswith(TESTS)
  )


def _resolve(dotted: str) -> str | None:
  """The workspace-relative file of the longest importable prefix of `dotted`."""
  parts = dotted.split(".")
  for n in range(len(parts), 0, -1):
    base = ROOT.joinpath(*parts[:n])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
      if candidate.is_file():
        return candidate.relative_to(ROOT).as_posix()
  return None


def _import_nodes(tree: ast.AST):
  """Import statements of `tree`, and of the code a subprocess runs: the module
  after "-m" in a literal argument list, Python source in a string literal."""
  for node in ast.walk(tree):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      yield node
    elif isinstance(node, (ast.List, ast.Tuple)):
      items = [
        e.value if isinstance(e, ast.Constant) else None for e in node.elts
      ]
      for flag, module in zip(items, items[1:]):
        if flag == "-m" and isinstance(module, str):
          yield ast.Import(names=[ast.alias(name=module)])
    elif (
      isinstance(node, ast.Constant)
      and isinstance(node.value, str)
      and re.search(r"^\s*(from|import) \w", node.value, re.M)
    ):
      try:
        code = ast.parse(node.value)
      except SyntaxError:
        continue
      yield from _import_nodes(code)


def _imports(path: str) -> set[str]:
  """Files of the project modules (and tests/ helpers) that `path` imports."""
  package = pathlib.PurePosixPath(path).parent.parts
  found = set()
  for node in _import_nodes(
    ast.parse((ROOT / path).read_text(), filename=path)
  ):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      module = node.module or ""
      if node.level:  # relative: from package `path` is in
        base = package[: len(package) - node.level + 1]
        module = ".".join([*base, module] if module else base)
      names = [f"{module}.{alias.name}" for alias in node.names]
    else:
      continue
    for name in names:
      if name.split(".")[0] in PACKAGES:
        resolved = _resolve(name)
      elif re.match(r"test_\w+$", name.split(".")[0]) and path.startswith(
        tuple(f"{folder}/" for folder in TESTS)
      ):
        folder = pathlib.PurePosixPath(path).parent.as_posix()
        resolved = _resolve(f"{folder.replace('/', '.')}.{name.split('.')[0]}")
      else:
        continue
      if resolved and resolved != path:
        found.add(resolved)
  return found


@pytest.fixture(scope="module")
def targets():
  return _all_targets()


def test_every_test_file_has_a_py_test(targets):
  tested = {
    src
    for t in targets
    if t.rule in ("py_test", "pytest_test")
    for src in t.srcs
  }
  missing = [
    p.relative_to(ROOT).as_posix()
    for folder in TESTS
    for p in sorted((ROOT / folder).glob("test_*.py"))
    if p.relative_to(ROOT).as_posix() not in tested
  ]
  assert not missing, (
    "test files without a py_test; add to their folder's BUILD, e.g.\n"
    + "\n".join(
      f'pytest_test(\n    name = "{pathlib.Path(m).stem}",\n'
      '    deps = [...],  # targets of what it imports\n)'
      for m in missing
    )
  )


def test_every_py_test_names_an_existing_file(targets):
  stale = [
    f"{t.label}: {src}"
    for t in targets
    if t.rule in ("py_test", "pytest_test")
    for src in t.srcs
    if not (ROOT / src).is_file()
  ]
  assert not stale, "py_test sources that do not exist:\n" + "\n".join(stale)


def test_every_module_has_a_library_or_binary_in_its_folder(targets):
  covered = {
    src
    for t in targets
    if t.rule in ("py_library", "py_binary")
    for src in t.srcs
  }
  missing = [m for m in _modules() if m not in covered]
  assert not missing, (
    "modules without a py_library / py_binary in their folder's BUILD:\n"
    + "\n".join(missing)
  )


def test_every_main_module_has_a_binary(targets):
  runs = {t.module for t in targets if t.rule == "py_cli"}
  runs |= {
    src[:-3].replace("/", ".")
    for t in targets
    if t.rule == "py_binary"
    for src in t.srcs
  }
  missing = []
  for module in _modules():
    if re.search(
      r"^if __name__ == [\"']__main__[\"']:", (ROOT / module).read_text(), re.M
    ):
      dotted = module[:-3].replace("/", ".")
      if dotted not in runs:
        missing.append(
          f'{module}: py_cli(name = "{dotted.rsplit(".", 1)[-1]}", '
          f'module = "{dotted}", deps = [...])'
        )
  assert not missing, "modules with a main but no binary target:\n" + "\n".join(
    missing
  )


def test_deps_name_the_targets_of_every_project_import(targets):
  providers: dict[str, set[str]] = {}
  for t in targets:
    if t.rule == "py_library":
      for src in t.srcs:
        providers.setdefault(src, set()).add(t.label)
  problems = []
  for t in targets:
    if t.rule not in ("py_library", "pytest_test", "py_test"):
      continue
    own = set(t.srcs)
    for src in t.srcs:
      if not (ROOT / src).is_file() or src == PYTEST_MAIN:
        continue
      for imported in sorted(_imports(src)):
        if imported in own:
          continue
        if imported.startswith(tuple(f"{folder}/" for folder in TESTS)):
          problems.append(
            f"{t.label}: {src} imports {imported}; add it to srcs"
          )
        elif not providers.get(imported):
          problems.append(
            f"{t.label}: {src} imports {imported}, which no py_library has"
          )
        elif not providers[imported] & t.deps:
          problems.append(
            f"{t.label}: {src} imports {imported}; add "
            f"{' or '.join(sorted(providers[imported]))} to deps"
          )
  assert not problems, "BUILD deps out of date:\n" + "\n".join(problems)


def test_bench_run_all_has_every_bench_it_starts_in_its_runfiles(targets):
  """bench.run_all starts `python -m bench.<name>` for each name in BENCHES."""
  path = ROOT / "bench" / "run_all.py"
  if not path.is_file():
    pytest.skip("no bench/run_all.py")
  benches = None
  for node in ast.parse(path.read_text()).body:
    if (
      isinstance(node, ast.Assign)
      and len(node.targets) == 1
      and getattr(node.targets[0], "id", None) == "BENCHES"
    ):
      benches = ast.literal_eval(node.value)
  assert benches, "bench/run_all.py has no literal BENCHES tuple"
  (run_all,) = [
    t
    for t in targets
    if "bench/run_all.py" in t.srcs and t.rule == "py_library"
  ]
  missing = [
    f"//bench:{name}_lib"
    for name in benches
    if f"//bench:{name}_lib" not in run_all.deps
  ]
  assert not missing, f"add to {run_all.label}'s deps: {missing}"
