"""TensorFlow graph settings that the in-graph TV-L1 loops need.

Grappler's arithmetic optimizer rewrites chains of adds (`AddOpsRewrite`) into
accumulations backed by `TemporaryVariable` ops. Inside the TV-L1 while loops of
a frozen teacher that runs in a training step (the student's Eq. 7 step), the
loop's parallel iterations create the same temporary variable twice and the step
dies with `AlreadyExistsError ... AddOpsRewrite_add_N/tmp_var` (seen with an
`accurate`-preset, width-64 teacher on 8x64x64 clips). The rewrite only saves
memory, so it is switched off before such a graph is first run.
"""

import keras


def disable_add_ops_rewrite() -> bool:
  """Turns Grappler's arithmetic optimization off (TensorFlow backend only).

  Grappler options are process-wide in TensorFlow; the setting takes effect for
  functions first run after this call. Under JAX or PyTorch there is no
  Grappler and this does nothing.

  Returns:
    True if the option was set (TensorFlow backend), else False.
  """
  if keras.backend.backend() != "tensorflow":
    return False
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
  return True
