"""tsnet_tf.layers: every Keras layer of tsnet_tf's models, registered on import.

`import tsnet_tf.layers` registers them all (package "tsnet_tf"), so a saved
model loads with plain `keras.saving.load_model(path)`; `tsnet_tf.models` and
every loader in tsnet_tf (`training.run_dir`, `export.saved_model`) import it.
"""

from tsnet_tf.layers.clip_contract import ClipContract
from tsnet_tf.layers.edge import EdgeAveragePooling3D
from tsnet_tf.layers.edge import EdgeConv3D
from tsnet_tf.layers.edge import EdgeFoldedBatchNorm
from tsnet_tf.layers.edge import EdgeGlobalAveragePooling3D
from tsnet_tf.layers.edge import EdgeMaxPooling3D
from tsnet_tf.layers.flow_scaling import FlowScaling
from tsnet_tf.layers.frame_conv import FrameConv2D
from tsnet_tf.layers.late_fusion import LateFusion
from tsnet_tf.layers.temporal_difference import TemporalDifference
from tsnet_tf.layers.tvl1_flow import TVL1Flow

__all__ = [
    "ClipContract", "EdgeAveragePooling3D", "EdgeConv3D", "EdgeFoldedBatchNorm",
    "EdgeGlobalAveragePooling3D", "EdgeMaxPooling3D", "FlowScaling", "FrameConv2D",
    "LateFusion", "TemporalDifference", "TVL1Flow",
]
