"""`flow_network` / `FlowInputTeacher`: the teacher's flow part, fed flow directly."""

import keras
import numpy as np
import pytest

from tsnet_tf import models


def _teacher():
  keras.utils.set_random_seed(0)
  return models.build_teacher(3, 4, 16, backbone="light", width=4, flow_bound=4.0,
                              flow_overrides={"num_scales": 1, "finest_scale": 0,
                                              "num_warps": 1, "num_iters": 2,
                                              "median_size": 0})


def test_flow_network_is_the_teacher_after_tvl1():
  teacher = _teacher()
  sub = models.flow_network(teacher)
  assert tuple(sub.input_shape) == (None, 3, 16, 16, 2)
  assert {id(w) for w in sub.weights} == {id(w) for w in teacher.weights}
  clip = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  flow = keras.Model(teacher.input, teacher.get_layer("flow").output)(clip)
  np.testing.assert_allclose(sub(flow), teacher(clip), rtol=1e-5, atol=1e-5)
  rgb = models.build_rgb_model(3, 4, 16, backbone="light", width=4)
  with pytest.raises(ValueError, match="has no layer 'flow_scaling'"):
    models.flow_network(rgb)


def test_flow_input_teacher_trains_the_teachers_weights_on_flow():
  teacher = _teacher()
  model = models.FlowInputTeacher(teacher)
  clip = np.random.default_rng(1).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  np.testing.assert_allclose(model(clip), teacher(clip), rtol=1e-6)  # RGB: the teacher
  assert len(model.weights) == len(teacher.weights)
  model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  before = [w.numpy().copy() for w in teacher.trainable_weights]
  flow = np.random.default_rng(2).normal(0, 2, (2, 3, 16, 16, 2)).astype("float32")
  model.fit({"flow": flow}, np.array([0, 1]), epochs=1, verbose=0)
  changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, teacher.trainable_weights)]
  assert all(changed)
  np.testing.assert_allclose(model({"flow": flow}), models.flow_network(teacher)(flow),
                             rtol=1e-5, atol=1e-6)


def test_distillation_takes_the_teachers_features_from_given_flow():
  teacher = _teacher()
  student = models.build_rgb_model(3, 4, 16, backbone="light", width=4, name="student")
  model = models.DistillationModel(student, teacher, feature_layer="stage3_block1_out",
                                   teacher_flow_input=True)
  clip = np.random.default_rng(3).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  flow = keras.Model(teacher.input, teacher.get_layer("flow").output)(clip)
  from_rgb = model(clip, training=True)
  from_flow = model({"clip": clip, "flow": flow}, training=True)
  for key in ("teacher_features", "teacher_logits", "features"):  # logits: dropout
    np.testing.assert_allclose(from_flow[key], from_rgb[key], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(model({"clip": clip, "flow": flow}), student(clip), rtol=1e-6)
  model.compile("sgd")
  model.fit({"clip": clip, "flow": flow}, np.array([0, 1]), epochs=1, verbose=0)
  assert models.DistillationModel.from_config(model.get_config()).teacher_flow_input
  plain = models.DistillationModel(student, teacher)
  with pytest.raises(ValueError, match="teacher_flow_input=True"):
    plain({"clip": clip, "flow": flow}, training=True)
