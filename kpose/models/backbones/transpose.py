"""TransPose-R-A4 (Yang et al., "TransPose: Keypoint Localization via Transformer", ICCV 2021).

ResNet-50 up to stage conv3 (kpose's ``resnet50``: keras.applications' ResNet-50 with the
stride in the 3x3 convs; stride 8, 512 channels), a 1x1 conv without bias to d = 256, then
the H/8 x W/8 feature cells as tokens through 4 transformer encoder layers (DETR's post-norm
layer: 8-head self-attention, FFN 256 -> 1024 -> 256 with ReLU, dropout 0.1, a LayerNorm after
each residual sum). Queries and keys of every layer see the tokens plus a fixed 2-D sine
position embedding (:class:`~kpose.models.layers.SinePositionEmbedding`); values do not.

TransPose is stride 8 only, so its pyramid is built around the encoder output:

- ``F3`` (stride 8, 256 channels): the encoder output.
- ``F2`` (stride 4, 256 channels): TransPose's own upsampling, ConvTranspose 4x4 stride 2 (no
  bias), BN, ReLU on ``F3``. The backbone's stride-4 output, as HRNet's is its stride-4 branch:
  the simple head (``simple_feature="F2"``) is TransPose's head, that upsampling plus a 1x1 conv
  to K heatmaps, and the stand-alone SR head reads F2 (``sr_feature="F2"``, r = 4 at k = 1),
  as the SRPose paper's SR head sits where the simple head's 1x1 conv was.
- ``F4``, ``F5`` (strides 16, 32, 256 channels): ``F3`` max-pooled 2x2 and 4x4, parameter
  free; SRPose's coarse-to-fine neck starts from them and fuses ``F3`` and ``F2`` on the way up.

Each level is computed only when requested: a simple or SR head model (F2) has TransPose-R-A4's
layers exactly; SRPose (F2..F5) adds the two poolings.

``weights``: None, ``"imagenet"`` or a weights file of keras.applications' ResNet-50, for the
ResNet layers (TransPose starts from ImageNet ResNet-50); the transformer starts at random.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

from kpose.models.backbones.base import BACKBONE_LAYER_NAME, CAFFE, BackboneSpec
from kpose.models.backbones.resnet import RESNETS
from kpose.models.blocks import deconv_bn_relu
from kpose.models.layers import MultiHeadSelfAttention, SinePositionEmbedding

D_MODEL = 256
HEADS = 8
FFN = 1024
ENCODER_LAYERS = 4
DROPOUT = 0.1
LN_EPSILON = 1e-5  # PyTorch's nn.LayerNorm


def encoder_layer(
    tokens: keras.KerasTensor,
    position: SinePositionEmbedding,
    heads: int,
    ffn: int,
    dropout: float,
    name: str,
) -> keras.KerasTensor:
    """One post-norm transformer encoder layer (DETR / TransPose):
    ``x = LN(x + Attn(q=k=x+pos, v=x))``, ``x = LN(x + FFN(x))``.

    Args:
        tokens: (B, N, d).
        position: the position embedding layer, shared by all layers.
        heads, ffn: attention heads and the FFN's hidden width.

    Returns:
        (B, N, d).
    """
    channels = tokens.shape[-1]
    attended = MultiHeadSelfAttention(heads, dropout, name=f"{name}_attn")(
        [position(tokens), tokens]
    )
    attended = keras.layers.Dropout(dropout, name=f"{name}_attn_dropout")(attended)
    x = keras.layers.Add(name=f"{name}_attn_add")([tokens, attended])
    x = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}_norm1")(x)
    y = keras.layers.Dense(ffn, activation="relu", name=f"{name}_ffn1")(x)
    y = keras.layers.Dropout(dropout, name=f"{name}_ffn_dropout")(y)
    y = keras.layers.Dense(channels, name=f"{name}_ffn2")(y)
    y = keras.layers.Dropout(dropout, name=f"{name}_ffn2_dropout")(y)
    x = keras.layers.Add(name=f"{name}_ffn_add")([x, y])
    return keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}_norm2")(x)


def _build(input_size: tuple[int, int], levels: Sequence[str], weights: Any) -> keras.Model:
    """TransPose-R-A4: (B, H, W, 3) -> {level: (B, H/s, W/s, 256)} for ``levels``."""
    resnet50 = {spec.name: spec for spec in RESNETS}["resnet50"]
    cnn = resnet50.build(input_size, ("F3",), weights)
    x = keras.layers.Conv2D(D_MODEL, 1, use_bias=False, name="reduce")(cnn.output["F3"])
    height, width = x.shape[1:3]
    tokens = keras.layers.Reshape((height * width, D_MODEL), name="tokens")(x)
    position = SinePositionEmbedding(height, width, name="position")
    for layer in range(ENCODER_LAYERS):
        tokens = encoder_layer(tokens, position, HEADS, FFN, DROPOUT, f"encoder{layer}")
    f3 = keras.layers.Reshape((height, width, D_MODEL), name="encoded")(tokens)
    features = {"F3": f3}
    if "F2" in levels:
        features["F2"] = deconv_bn_relu(f3, D_MODEL, "upsample")
    for level, pool in (("F4", 2), ("F5", 4)):
        if level in levels:
            features[level] = keras.layers.MaxPooling2D(pool, name=f"pool{level[1]}")(f3)
    outputs = {level: features[level] for level in levels}
    return keras.Model(cnn.input, outputs, name=BACKBONE_LAYER_NAME)


TRANSPOSE_BACKBONES = (
    BackboneSpec(
        name="transpose_r_a4",
        builder=_build,
        channels=(D_MODEL,) * 4,
        bottleneck=False,
        normalization=CAFFE,
        simple_feature="F2",
        sr_feature="F2",
    ),
)
