"""The training stages (`--stage`) as objects: what each trains, compiles and saves.

A `Stage` answers, for one stage, everything `trainer.train` needs to know:

  input_runs()      run directories it builds on, checked before anything is written
  build()           the model `fit` trains (called under the strategy's scope)
  compile_kwargs()  loss and metrics for `compile` (the optimizer is the trainer's)
  callbacks()       its own Keras callbacks (e.g. the student's MSE warm-up)
  export()          the classifier saved as model.keras / best.keras, carrying the
                    run's clip spec and class names (`clip_contract.attach`)

Stages:
  rgb        RGB 3D CNN, CE only.
  teacher    RGB clip -> in-graph TV-L1 -> 3D CNN, CE only (M1 + M2); with
             `model.flow.source: stored` its training steps take the flow
             stored in the TFRecords (`models.FlowInputTeacher`), and it
             exports the same RGB-input teacher.
  student    RGB 3D CNN (M3) with Eq. 7 against the frozen teacher of
             `teacher_dir`; exports the student alone. With
             `model.flow.source: stored` the teacher's features come from the
             stored flow (no TV-L1 in the step).
  twostream  late fusion of rgb and flow networks: loaded from `rgb_dir` and
             `flow_dir`, or (neither given) built fresh and trained jointly.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras

from tsnet_tf import config as config_lib
from tsnet_tf import models
from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.layers import clip_contract
from tsnet_tf.training import callbacks as callbacks_lib
from tsnet_tf.training import run_dir
from tsnet_tf.training.errors import TrainingError


def build_rgb(cfg: config_lib.ExperimentConfig, num_classes: int,
              name: str = "rgb") -> keras.Model:
  """The config's RGB classifier: float32 `[B, T, S, S, 3]` -> logits `[B, K]`."""
  return models.build_rgb_model(num_classes, cfg.data.num_frames, cfg.data.crop_size,
                                name=name, rgb_input=cfg.model.rgb_input,
                                **config_lib.backbone_kwargs(cfg))


def build_flow(cfg: config_lib.ExperimentConfig, num_classes: int,
               name: str = "flow") -> keras.Model:
  """The config's flow classifier (TV-L1 in the graph): `[B, T, S, S, 3]` -> `[B, K]`."""
  f = cfg.model.flow
  return models.build_teacher(num_classes, cfg.data.num_frames, cfg.data.crop_size,
                              flow_preset=f.preset, flow_overrides=dict(f.overrides),
                              flow_bound=f.bound, flow_subtract_median=f.subtract_median,
                              name=name, **config_lib.backbone_kwargs(cfg))


def load_classifier(model_dir: str, flag: str) -> keras.Model:
  """Loads `model_dir/model.keras` (a trained classifier) given as `flag`."""
  if not model_dir:
    raise TrainingError(f"{flag} is required for this stage")
  try:
    return run_dir.load_classifier(model_dir, run_dir.MODEL_FILE, flag)
  except FileNotFoundError as e:
    raise TrainingError(str(e)) from e


def check_input(model: keras.Model, cfg: config_lib.ExperimentConfig, num_classes: int,
                what: str) -> None:
  """A loaded classifier takes the config's clips and predicts the data's classes."""
  expected = (cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size, 3)
  got = tuple(model.input_shape[1:])
  if got != expected:
    raise TrainingError(
        f"{what} takes clips of shape {got} but the config gives {expected} "
        "(data.num_frames, data.crop_size); use the teacher's settings")
  if model.output_shape[-1] != num_classes:
    raise TrainingError(
        f"{what} has {model.output_shape[-1]} classes but the data directory has {num_classes}")


def uncompiled(model: keras.Model) -> keras.Model:
  """The same layers and weights in a new, uncompiled functional model.

  Saving it leaves the optimizer (and our schedule class) out of the
  `.keras` file, so it loads anywhere `tsnet_tf.models` is importable.
  """
  return keras.Model(model.input, model.output, name=model.name)


class Stage:
  """One training stage. Subclasses implement `build` (and what differs).

  Args:
    cfg: the resolved experiment config.
    num_classes: classes of the data directory.
    spec: the clip spec every exported classifier carries (None: none attached).
    labels: the class names it carries.
  """
  name = ""

  def __init__(self, cfg: config_lib.ExperimentConfig, num_classes: int,
               spec: Optional[clip_spec_lib.ClipSpec] = None,
               labels: Optional[Sequence[str]] = None):
    self.cfg = cfg
    self.num_classes = num_classes
    self.spec = spec
    self.labels = list(labels) if labels is not None else None
    self.model: Optional[keras.Model] = None

  def input_runs(self) -> List[Tuple[Optional[str], str, Tuple[str, ...]]]:
    """`(directory, flag, stages it may hold)` of each run this stage builds on."""
    return []

  def check_input_runs(self) -> None:
    """The runs this stage builds on hold the stages it expects (their config.yaml),
    trained on this run's classes (their labels.txt)."""
    for directory, flag, stages in self.input_runs():
      try:
        run_dir.check_stage(directory, flag, stages)
        if self.labels is not None:
          run_dir.check_classes(directory, flag, self.labels)
      except run_dir.RunDirError as e:
        raise TrainingError(str(e)) from e

  def build(self) -> keras.Model:
    """Builds (or loads) what `fit` trains; sets and returns `self.model`."""
    raise NotImplementedError

  def compile_kwargs(self) -> Dict[str, Any]:
    """`compile` arguments besides the optimizer: sparse CE on logits, accuracy."""
    return dict(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])

  def callbacks(self) -> List[keras.callbacks.Callback]:
    return []

  def stored_flow(self) -> str:
    """What the training input holds besides labels: "" (RGB clips) or a
    `pipeline.make_dataset` `stored_flow` mode ("flow", "clip_and_flow")."""
    return ""

  def flow_config(self) -> Tuple[config_lib.FlowConfig, str]:
    """`(the TV-L1 settings stored flow must match, whose they are)`."""
    return self.cfg.model.flow, ""

  def classifier(self) -> keras.Model:
    """The trained classifier, without the optimizer state."""
    return uncompiled(self.model)

  def export(self) -> keras.Model:
    """The classifier saved as model.keras / best.keras, with the run's clip contract."""
    model = self.classifier()
    if self.spec is None:
      return model
    return clip_contract.attach(model, self.spec, self.labels)


class RgbStage(Stage):
  """The RGB baseline: an RGB 3D CNN trained on CE."""

  name = "rgb"

  def build(self):
    self.model = build_rgb(self.cfg, self.num_classes, "rgb")
    return self.model


class TeacherStage(Stage):
  """The teacher (M1 + M2): TV-L1 in the graph, then a 3D CNN, trained on CE."""

  name = "teacher"

  def build(self):
    teacher = build_flow(self.cfg, self.num_classes, "flow")
    if self.stored_flow():
      self.model = models.FlowInputTeacher(teacher, name="flow_input_teacher")
      # Built on the RGB path: every weight of the teacher exists before fit.
      self.model.build((None,) + tuple(teacher.input_shape[1:]))
    else:
      self.model = teacher
    return self.model

  def stored_flow(self):
    return "flow" if self.cfg.model.flow.source == "stored" else ""

  def classifier(self):
    if self.stored_flow():
      return uncompiled(self.model.teacher)
    return super().classifier()


class StudentStage(Stage):
  """The student (M3): Eq. 7 against the frozen teacher of `teacher_dir`."""

  name = "student"

  def __init__(self, *args, teacher_dir: Optional[str] = None, **kwargs):
    super().__init__(*args, **kwargs)
    self.teacher_dir = teacher_dir

  def input_runs(self):
    return [(self.teacher_dir, "--teacher_dir", ("teacher",))]

  def build(self):
    cfg = self.cfg
    teacher = load_classifier(self.teacher_dir, "--teacher_dir")
    check_input(teacher, cfg, self.num_classes, f"the teacher in {self.teacher_dir!r}")
    student = build_rgb(cfg, self.num_classes, "student")
    model = models.DistillationModel(
        student, teacher, distill_weight=cfg.distill.lambda_,
        feature_layer=cfg.distill.feature_layer, projection=cfg.distill.projection,
        confidence_weighting=cfg.distill.confidence_weighting,
        logit_weight=cfg.distill.logit_weight, temperature=cfg.distill.temperature,
        teacher_flow_input=bool(self.stored_flow()), name="distillation")
    model.build((None,) + tuple(student.input_shape[1:]))
    self.model = model
    return model

  def compile_kwargs(self):
    return {}  # DistillationModel computes Eq. 7 itself.

  def stored_flow(self):
    return "clip_and_flow" if self.cfg.model.flow.source == "stored" else ""

  def flow_config(self):
    """The teacher run's TV-L1 settings (its config.yaml): stored flow stands in for
    the flow the teacher computes."""
    try:
      teacher_cfg = run_dir.load_run_config(self.teacher_dir) if self.teacher_dir else None
    except config_lib.ConfigError:
      teacher_cfg = None
    if teacher_cfg is None:
      return self.cfg.model.flow, ""
    return teacher_cfg.model.flow, f"the teacher in --teacher_dir {self.teacher_dir!r} has "

  def callbacks(self):
    distill = self.cfg.distill
    callbacks = []
    if distill.mse_warmup_epochs:
      callbacks.append(callbacks_lib.MseWarmup(distill.mse_warmup_epochs))
    if distill.lambda_schedule == "cosine" and self.cfg.train.epochs > distill.mse_warmup_epochs:
      callbacks.append(callbacks_lib.DistillWeightDecay(
          distill.lambda_, self.cfg.train.epochs, start_epoch=distill.mse_warmup_epochs))
    return callbacks

  def classifier(self):
    return self.model.student


class TwoStreamStage(Stage):
  """Late fusion of an rgb and a flow network (`models.build_two_stream`).

  With `rgb_dir` and `flow_dir` the trained networks are loaded (and
  fine-tuned only if epochs > 0); without them both are built fresh and
  trained jointly on the CE of the fused prediction. The fusion rule is
  `model.fusion` (`mean` or `geometric`).
  """

  name = "twostream"

  def __init__(self, *args, rgb_dir: Optional[str] = None, flow_dir: Optional[str] = None,
               **kwargs):
    super().__init__(*args, **kwargs)
    self.rgb_dir = rgb_dir
    self.flow_dir = flow_dir

  def input_runs(self):
    return [(self.rgb_dir, "--rgb_dir", ("rgb", "student")),
            (self.flow_dir, "--flow_dir", ("teacher",))]

  def build(self):
    cfg = self.cfg
    if bool(self.rgb_dir) != bool(self.flow_dir):
      raise TrainingError("--rgb_dir and --flow_dir go together (or neither: train both)")
    if self.rgb_dir:
      rgb = load_classifier(self.rgb_dir, "--rgb_dir")
      flow = load_classifier(self.flow_dir, "--flow_dir")
      check_input(rgb, cfg, self.num_classes, f"the rgb model in {self.rgb_dir!r}")
      check_input(flow, cfg, self.num_classes, f"the flow model in {self.flow_dir!r}")
      if rgb.name == flow.name:
        flow.name = f"{flow.name}_flow"
    else:
      if cfg.train.epochs == 0:
        raise TrainingError(
            "twostream without --rgb_dir/--flow_dir trains both streams jointly: "
            "set train.epochs > 0 (e.g. --params_override=train.epochs=10)")
      rgb = build_rgb(cfg, self.num_classes, "rgb")
      flow = build_flow(cfg, self.num_classes, "flow")
    self.model = models.build_two_stream(rgb, flow, name="twostream",
                                         fusion=cfg.model.fusion)
    return self.model


STAGES = {s.name: s for s in (RgbStage, TeacherStage, StudentStage, TwoStreamStage)}


def make_stage(name: str, cfg: config_lib.ExperimentConfig, num_classes: int,
               spec: Optional[clip_spec_lib.ClipSpec] = None,
               labels: Optional[Sequence[str]] = None,
               teacher_dir: Optional[str] = None, rgb_dir: Optional[str] = None,
               flow_dir: Optional[str] = None) -> Stage:
  """The `Stage` for canonical stage `name`; each takes the input runs it uses.

  Raises:
    TrainingError: an unknown stage.
  """
  if name not in STAGES:
    raise TrainingError(f"unknown stage {name!r}")
  kwargs = {"student": dict(teacher_dir=teacher_dir),
            "twostream": dict(rgb_dir=rgb_dir, flow_dir=flow_dir)}.get(name, {})
  return STAGES[name](cfg, num_classes, spec=spec, labels=labels, **kwargs)
