"""The public Python API: `import tsnet_tf` as a Keras user would."""

import subprocess
import sys
import textwrap

import tsnet_tf


def test_all_names_resolve():
  for name in tsnet_tf.__all__:
    assert getattr(tsnet_tf, name) is not None, name


def test_import_registers_layers_so_a_saved_teacher_loads_in_a_fresh_process(tmp_path):
  path = tmp_path / "teacher.keras"
  teacher = tsnet_tf.build_teacher(3, 4, 32, backbone="light", width=8,
                                   flow_preset="fast", flow_overrides={"num_iters": 2})
  teacher.save(path)
  # A fresh interpreter that imports only tsnet_tf and keras, as a user would.
  code = textwrap.dedent(f"""
      import numpy as np, keras, tsnet_tf
      m = keras.saving.load_model({str(path)!r})
      assert any(isinstance(l, tsnet_tf.TVL1Flow) for l in m.layers)
      print(m(np.zeros((1, 4, 32, 32, 3), "float32")).shape)
  """)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "(1, 3)" in out.stdout
