"""The public Python API: `import tsnet_tf` as a Keras user would; the package's import graph."""

import os
import subprocess
import sys
import textwrap

import grimp
import pytest

import tsnet_tf

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_all_names_resolve():
  for name in tsnet_tf.__all__:
    assert getattr(tsnet_tf, name) is not None, name


@pytest.mark.parametrize("imports", [
    "import numpy as np, keras, tsnet_tf",
    # tsnet_tf first: it loads no Keras, and registers its layers when Keras is imported.
    "import sys, tsnet_tf; assert 'keras' not in sys.modules; import numpy as np, keras",
    # A module that imports Keras half-way through its own import, before the layers
    # it needs exist: the registration waits for it (it used to log "not registered").
    "import tsnet_tf.flow.tvl1, numpy as np, keras, tsnet_tf",
    pytest.param("import tsnet_tf.data.pipeline, numpy as np, keras, tsnet_tf",
                 marks=pytest.mark.slow),
])
def test_import_registers_layers_so_a_saved_teacher_loads_in_a_fresh_process(tmp_path, imports):
  path = tmp_path / "teacher.keras"
  teacher = tsnet_tf.build_teacher(3, 4, 32, backbone="light", width=8,
                                   flow_preset="fast", flow_overrides={"num_iters": 2})
  teacher.save(path)
  # A fresh interpreter that imports only tsnet_tf and keras, as a user would.
  code = textwrap.dedent(f"""
      {imports}
      m = keras.saving.load_model({str(path)!r})
      assert any(isinstance(l, tsnet_tf.TVL1Flow) for l in m.layers)
      print(m(np.zeros((1, 4, 32, 32, 3), "float32")).shape)
  """)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "(1, 3)" in out.stdout
  assert "not registered" not in out.stderr


def test_layer_contract_holds():
  """.importlinter's layers (docs/design.md): no import from a lower layer to a higher one.

  import-linter reads every import statement, function-local ones included.
  """
  code = ("import sys\nfrom importlinter.cli import lint_imports_command\n"
          "sys.exit(lint_imports_command())")
  out = subprocess.run([sys.executable, "-c", code, "--config", ".importlinter", "--no-cache"],
                       cwd=_REPO, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=_REPO))
  assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
  assert "1 kept, 0 broken" in out.stdout, out.stdout[-4000:]


def _cycles(edges):
  """Strongly connected components of more than one module (Tarjan, iterative)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []
  for root in sorted(edges):
    if root in index:
      continue
    work = [(root, iter(sorted(edges[root])))]
    index[root] = low[root] = len(index)
    stack.append(root)
    on_stack.add(root)
    while work:
      node, children = work[-1]
      child = next(children, None)
      if child is not None:
        if child not in index:
          index[child] = low[child] = len(index)
          stack.append(child)
          on_stack.add(child)
          work.append((child, iter(sorted(edges[child]))))
        elif child in on_stack:
          low[node] = min(low[node], index[child])
        continue
      work.pop()
      if work:
        low[work[-1][0]] = min(low[work[-1][0]], low[node])
      if low[node] == index[node]:
        component = []
        while True:
          member = stack.pop()
          on_stack.discard(member)
          component.append(member)
          if member == node:
            break
        if len(component) > 1:
          found.append(sorted(component))
  return found


def test_cycle_finder_finds_a_cycle():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
  assert not _cycles({"a": {"b"}, "b": set()})


def test_no_import_cycles_between_package_modules():
  graph = grimp.build_graph("tsnet_tf", cache_dir=None)
  edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
  assert not _cycles(edges)


def test_package_root_and_worker_modules_load_neither_keras_nor_tensorflow():
  """Spawned converter workers import `data.tfrecords` (via the root); tools import `config`
  before choosing a backend: none of them may load Keras or TensorFlow."""
  code = ("import sys\n"
          "import tsnet_tf, tsnet_tf.config, tsnet_tf.data.tfrecords, tsnet_tf.utils.processes\n"
          "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                           [_REPO] + [p for p in [os.environ.get("PYTHONPATH")] if p])))
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "[]"
