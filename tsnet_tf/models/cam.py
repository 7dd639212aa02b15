"""Class activation maps: where in a clip a classifier finds its class.

Zhou et al.'s CAM, exact for this project's classifiers: the logits are a
linear function (dense "logits", optionally after a dense "features"
projection) of the global average of the last convolutional map A, so

  logit_k = mean over (t, y, x) of  cam_k(t, y, x) + b_k,
  cam_k(t, y, x) = A(t, y, x) . w_k,

with `w_k` the product of the linear layers' kernels. No gradients: the maps
are the logits' own terms, in keras.ops, under every backend.
"""

from typing import Sequence

import keras
from keras import ops
import numpy as np

POOL_LAYERS = ("features", "pool")


def _pool_layer(model: keras.Model) -> keras.layers.Layer:
  """The global average pool over the last map (`features`, or `pool` before a projection)."""
  for name in ("pool", "features"):
    try:
      layer = model.get_layer(name)
    except ValueError:
      continue
    if isinstance(layer, keras.layers.GlobalAveragePooling3D):
      return layer
  raise ValueError(f"model {model.name!r} has no global-average-pool layer named "
                   f"{' or '.join(POOL_LAYERS)}: not one of tsnet_tf's classifiers")


def class_activation_maps(model: keras.Model, clips, class_ids: Sequence[int]) -> np.ndarray:
  """CAMs of `class_ids` for a batch of clips.

  Args:
    model: a tsnet_tf classifier (`build_rgb_model`, `build_teacher`), logits out.
    clips: float32 `[B, T, S, S, 3]` in [0, 255], the model's input.
    class_ids: B class indices, one per clip.

  Returns:
    float32 `[B, T', H', W']`: the class's evidence at each position of the last
    map (T', H', W' its size); their mean plus the logit bias is the logit.
  """
  pool = _pool_layer(model)
  trunk = keras.Model(model.inputs, pool.input)
  maps = trunk(ops.convert_to_tensor(clips), training=False)  # [B, T', H', W', C]
  weights = model.get_layer("logits").kernel  # [D, K]
  if pool.name == "pool":
    weights = ops.matmul(model.get_layer("features").kernel, weights)  # [C, K]
  w = ops.transpose(ops.take(weights, ops.convert_to_tensor(list(class_ids)), axis=1))  # [B, C]
  cams = ops.einsum("bthwc,bc->bthw", ops.cast(maps, "float32"), ops.cast(w, "float32"))
  return np.asarray(ops.convert_to_numpy(cams))
