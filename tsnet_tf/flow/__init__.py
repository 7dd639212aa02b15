"""tsnet_tf.flow: TV-L1 optical flow (M1 math), colour coding, .flo files, evaluation."""

from tsnet_tf.flow.flo import read_flo
from tsnet_tf.flow.flo import valid_mask
from tsnet_tf.flow.flo import write_flo
from tsnet_tf.flow.tvl1 import PRESETS
from tsnet_tf.flow.tvl1 import resolve_params
from tsnet_tf.flow.tvl1 import tvl1
from tsnet_tf.flow.visualize import flow_to_rgb

__all__ = ["PRESETS", "flow_to_rgb", "read_flo", "resolve_params", "tvl1",
           "valid_mask", "write_flo"]
