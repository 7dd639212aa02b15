"""tsnet_tf.layers: Keras layers of the teacher and student models."""

from tsnet_tf.layers.frame_conv import FrameConv2D
from tsnet_tf.layers.temporal_difference import TemporalDifference
from tsnet_tf.layers.tvl1_flow import TVL1Flow

__all__ = ["FrameConv2D", "TemporalDifference", "TVL1Flow"]
