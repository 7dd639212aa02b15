"""A Grappler setting for the TensorFlow functions that run TV-L1's loops.

In the student's Eq. 7 train step (a frozen `accurate`-preset, width-64
teacher on 8x64x64 clips, batch 8: configs/synthetic_table1.yaml), two
Grappler passes combine into a crash inside the teacher's TV-L1 while loops:
the arithmetic optimizer's `AddOpsRewrite` turns the chain
`u + step * grad + theta * div` into one `AddN`, and the memory optimizer then
rewrites that `AddN` into a `TemporaryVariable` accumulator. The second train
step dies with `AlreadyExistsError ... AddOpsRewrite_add_3/tmp_var/frame:.../
iter:20` (20 = the loop's iteration count). Running the loops one iteration at
a time (`parallel_iterations=1`) does not prevent it; switching off either
pass does. The smaller graphs tried (the same teacher trained on its own, or
this step with width 16, batch 2-4 or 32x32 clips) run with both passes on.

The same error ends inference with the teacher's in-graph `accurate` TV-L1 at
the paper's 25x224x224 clips, on the second call of a function traced for a
fixed batch size (not with a `None` batch, as the SavedModel signatures have).

It also ends Keras `fit`/`evaluate` of a model with TV-L1 in its graph (the
teacher, the flow and two-stream baselines) at that clip, within the first
steps (2 cores, Intel Xeon with AVX-512, TF 2.21).

`without_add_ops_rewrite` switches the arithmetic optimizer off for the
functions one callable runs (`DistillationModel`'s train function,
`evaluation.predict_clips`, `comparison.time_tensorflow`, and through
`keras_functions_without_add_ops_rewrite` a compiled model's train and test
functions), through the per-call options TensorFlow gives every function
call, so the rest of the process keeps Grappler's defaults.
"""

import functools
from typing import Callable

import keras


def _rewrite_options_without_arithmetic(call_options):
  """A copy of `call_options` (FunctionCallOptions) with the pass switched off."""
  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import config_pb2
  from tensorflow.core.protobuf import rewriter_config_pb2
  from tensorflow.python.eager import context
  # pylint: enable=g-import-not-at-top
  config = config_pb2.ConfigProto()
  if call_options.config_proto_serialized:
    config.ParseFromString(call_options.config_proto_serialized)
  config.graph_options.rewrite_options.arithmetic_optimization = (
      rewriter_config_pb2.RewriterConfig.OFF)
  return context.FunctionCallOptions(executor_type=call_options.executor_type,
                                     config_proto=config)


# Marks a callable `without_add_ops_rewrite` returned.
_WRAPPED = "_tsnet_tf_without_add_ops_rewrite"


def without_add_ops_rewrite(function: Callable) -> Callable:
  """`function`, with Grappler's arithmetic optimizer off in what it calls.

  Every `tf.function` called while the returned callable runs (in its
  thread) is optimized without the arithmetic optimizer; other functions,
  other threads and the process-wide `tf.config.optimizer` options are left
  as they are. TensorFlow takes Grappler's options from the thread's function
  call options at each call (`context.function_executor_type` sets the same
  options the same way). Under JAX or PyTorch there is no Grappler and
  `function` is returned unchanged.

  Args:
    function: any callable, typically a Keras train function.

  Returns:
    A callable with the same arguments and results.
  """
  if keras.backend.backend() != "tensorflow" or getattr(function, _WRAPPED, False):
    return function  # (wrapping twice would do the same thing twice a call)
  from tensorflow.python.eager import context  # pylint: disable=g-import-not-at-top

  @functools.wraps(function)
  def wrapped(*args, **kwargs):
    ctx = context.context()
    saved = ctx.function_call_options
    ctx.function_call_options = _rewrite_options_without_arithmetic(saved)
    try:
      return function(*args, **kwargs)
    finally:
      ctx.function_call_options = saved

  setattr(wrapped, _WRAPPED, True)
  return wrapped


def keras_functions_without_add_ops_rewrite(model: keras.Model) -> None:
  """Makes a compiled Keras model's `fit` and `evaluate` run without the optimizer.

  Keras builds a model's train and test functions at its first `fit` or
  `evaluate` and keeps them until the next `compile`; this builds them now
  and replaces each with `without_add_ops_rewrite` of it, so every later
  `fit`, `evaluate` (and `fit`'s validation) runs its steps without the
  arithmetic optimizer. Call it after `compile`. Under JAX or PyTorch it does
  nothing.

  Args:
    model: a compiled `keras.Model`.
  """
  if keras.backend.backend() != "tensorflow":
    return
  model.make_train_function()
  model.train_function = without_add_ops_rewrite(model.train_function)
  model.make_test_function()
  model.test_function = without_add_ops_rewrite(model.test_function)
