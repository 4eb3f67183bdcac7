"""Custom Keras layers of kpose models (registered for ``.keras`` loading in safe mode)."""

from kpose.models.layers.gelu import GELU
from kpose.models.layers.image_normalization import ImageNormalization
from kpose.models.layers.keypoint_conv import KeypointConv2D
from kpose.models.layers.pixel_shuffle import KeypointPixelShuffle

__all__ = ["GELU", "ImageNormalization", "KeypointConv2D", "KeypointPixelShuffle"]
