"""tsnet_tf.models: backbones, teacher / student / two-stream builders, Eq. 7.

Importing it registers every tsnet_tf Keras object a saved model may hold: the
layers (`tsnet_tf.layers`) and `DistillationModel`.
"""

from tsnet_tf import layers  # pylint: disable=unused-import  # registers the layers
from tsnet_tf.models.backbones import apply_backbone
from tsnet_tf.models.backbones import build_backbone
from tsnet_tf.models.backbones import feature_size
from tsnet_tf.models.classifiers import build_rgb_model
from tsnet_tf.models.classifiers import build_teacher
from tsnet_tf.models.classifiers import build_two_stream
from tsnet_tf.models.classifiers import feature_and_logits
from tsnet_tf.models.classifiers import video_normalization
from tsnet_tf.models.distillation import build_distillation_model
from tsnet_tf.models.distillation import DistillationModel
from tsnet_tf.models.flops import count_flops
from tsnet_tf.models.flops import count_params
from tsnet_tf.models.flow_input import flow_network
from tsnet_tf.models.flow_input import FlowInputTeacher
