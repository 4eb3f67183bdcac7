"""Custom Keras layers of kpose models (registered for ``.keras`` loading in safe mode)."""

from kpose.models.layers.gelu import GELU
from kpose.models.layers.image_normalization import ImageNormalization
from kpose.models.layers.keypoint_conv import KeypointConv2D
from kpose.models.layers.pixel_shuffle import KeypointPixelShuffle
from kpose.models.layers.self_attention import MultiHeadSelfAttention
from kpose.models.layers.sine_position_embedding import SinePositionEmbedding
from kpose.models.layers.window_attention import WindowAttention

__all__ = [
    "GELU",
    "ImageNormalization",
    "KeypointConv2D",
    "KeypointPixelShuffle",
    "MultiHeadSelfAttention",
    "SinePositionEmbedding",
    "WindowAttention",
]
