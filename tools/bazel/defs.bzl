"""Macros of the project's BUILD files (Bazel's built-in Python rules only).

tests/test_bazel_targets.py reads the BUILD files as text and knows these two
macros: keep their arguments literal lists and strings.
"""

def py_cli(name, module, deps = [], data = [], **kwargs):
    """A py_binary that runs `module` like `python -m module`.

    Plain py_binary would run the file as a script inside the runfiles tree:
    its package folder first on sys.path and the current directory somewhere
    under bazel-bin. The generated main runs the module with runpy from the
    directory `bazel run` was started in instead.

    Args:
      name: the binary, e.g. "train" (`bazel run //hvrnn_tf:train -- ...`).
      module: dotted module name, e.g. "hvrnn_tf.train".
      deps: the py_library holding the module (and anything else it needs).
      data: files it reads at run time (gin configs).
      **kwargs: passed to py_binary (tags, visibility, ...).
    """
    main = "_%s_main.py" % name
    native.genrule(
        name = "_%s_main" % name,
        srcs = ["//tools/bazel:py_cli_main.py.tpl"],
        outs = [main],
        cmd = "sed -e 's/@MODULE@/%s/g' $< > $@" % module,
        visibility = ["//visibility:private"],
    )
    native.py_binary(
        name = name,
        srcs = [main],
        main = main,
        python_version = "PY3",
        srcs_version = "PY3",
        deps = deps,
        data = data,
        **kwargs
    )

def pytest_test(name, deps = [], data = [], srcs = [], size = "medium", **kwargs):
    """A py_test that runs <package>/<name>.py under pytest (tests/bazel_pytest_main.py).

    conftest.py fixtures, parametrize, tmp_path and pyproject.toml's options
    (`-m 'not slow'`) behave as under `pytest -q`. Used in //tests and
    //bench/tests; the package needs a `conftest` py_library (its conftest.py,
    with data "//:pyproject.toml").

    Args:
      name: the test file's name without ".py", e.g. "test_vrnn".
      deps: py_library targets the test imports.
      data: files it reads (gin configs, ...).
      srcs: other test files it imports helpers from (e.g. "test_fvd.py").
      size: Bazel test size ("small", "medium", "large", "enormous").
      **kwargs: passed to py_test (timeout, tags, ...).
    """
    main = "//tests:bazel_pytest_main.py"
    native.py_test(
        name = name,
        srcs = [main, name + ".py"] + srcs,
        main = main,
        args = ["$(location %s.py)" % name],
        python_version = "PY3",
        srcs_version = "PY3",
        size = size,
        deps = [":conftest"] + deps,
        data = data,
        **kwargs
    )
