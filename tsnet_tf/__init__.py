"""tsnet_tf: teacher-student action recognition with in-graph TV-L1 optical flow."""

__version__ = "0.1.0"
