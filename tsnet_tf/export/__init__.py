"""tsnet_tf.export: SavedModel for TF-Serving, TFLite for edge devices, prediction.

See docs/deploy.md. Submodules: `saved_model` (serving graph, export),
`tflite` (conversion, LiteRT runner), `edge` (TFLite-friendly 2D twin of 3D
layers), `predict` (video file -> top-5 from any artifact), `serving`
(TF-Serving gRPC/REST client helpers), `recognize` (sliding windows over long
videos and live streams: per-window classes; docs/recognize.md) with `segments`
(its smoothing rule) and `annotate` (annotated video, timeline PNG).
"""

from tsnet_tf.export.edge import edge_model
from tsnet_tf.export.predict import load_predictor
from tsnet_tf.export.predict import predict_video
from tsnet_tf.export.saved_model import export_from_model_dir
from tsnet_tf.export.saved_model import export_saved_model
from tsnet_tf.export.saved_model import ServingModule
from tsnet_tf.export.tflite import convert_flow_layer
from tsnet_tf.export.tflite import convert_keras_model
from tsnet_tf.export.tflite import convert_saved_model
from tsnet_tf.export.tflite import TFLiteRunner

__all__ = [
    "ServingModule", "TFLiteRunner", "convert_flow_layer", "convert_keras_model",
    "convert_saved_model", "edge_model", "export_from_model_dir", "export_saved_model",
    "load_predictor", "predict_video",
]
