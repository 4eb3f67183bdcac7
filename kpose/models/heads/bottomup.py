"""Bottom-up heads with associative embedding (SR paper, section 3.3 "Bottom up").

Both heads read the stride-4 feature a SimpleBaseline head reads (three deconvolutions on F5,
or HRNet's stride-4 branch; the SR head can read a pyramid level instead, option ``feature``)
and output two maps of the same size:

- ``heatmaps`` (B, h, w, K): one Gaussian peak per person and keypoint type;
- ``tags`` (B, h, w, K): one associative-embedding tag per keypoint type, a 1x1 conv on the
  head's input feature, bilinearly upsampled to the heatmaps' resolution (the paper's Eq. 6).

Option ``tag_context`` (ours, off by default): the tag conv also reads a coarser pyramid level
(e.g. ``"F5"``), projected by a 1x1 conv at its own resolution, bilinearly upsampled and
concatenated. A tag says whose keypoint this is, so it needs a receptive field the size of a
person; a stride-8 feature of an edge backbone sees ~100 px, and the tags of people taller
than that fall apart (training/experiments/bottomup_errors.py, docs/bottomup.md). Option
``heatmap_context`` (``srhead_ae``, ours, off by default) feeds the same concatenation to the
SR head, meant for keypoints hidden behind another figure (placed from the rest of the
person); its own effect is not isolated yet (docs/bottomup.md, "Measured runs", R7).

``ae``: a 1x1 conv to K heatmaps at 1/4 (the simple head). ``srhead_ae``: the SR head
(e=4, r=4, kernel 9 by default) to full resolution.
"""

from __future__ import annotations

from typing import Mapping

import keras

from kpose.errors import ConfigError
from kpose.models.backbones import LEVELS, STRIDES, BackboneSpec
from kpose.models.heads.simple import DECONV_FILTERS, heatmap_conv, simple_features, simple_levels
from kpose.models.heads.sr import EMBED, KERNEL_SIZE, sr_head, sr_input, sr_levels, upscale_factor

CONTEXT_FILTERS = 64


def with_context(
    x: keras.KerasTensor, context: keras.KerasTensor, filters: int
) -> keras.KerasTensor:
    """(B, h, w, C) and a coarser level (B, h/f, w/f, C') -> (B, h, w, C + filters): the
    coarse level through a 1x1 conv to ``filters`` channels, bilinearly upsampled by f."""
    factor = x.shape[1] // context.shape[1]
    y = keras.layers.Conv2D(filters, 1, name="tag_context_conv")(context)
    y = keras.layers.UpSampling2D(factor, interpolation="bilinear", name="tag_context_up")(y)
    return keras.layers.Concatenate(name="tag_context_concat")([x, y])


def _check_level(tag_context: str | None) -> None:
    if tag_context is not None and tag_context not in LEVELS:
        raise ConfigError(f"tag_context {tag_context!r} is not one of {', '.join(LEVELS)}")


def _check_context(tag_context: str | None, stride: int) -> None:
    _check_level(tag_context)
    if tag_context is not None and STRIDES[tag_context] <= stride:
        raise ConfigError(
            f"tag_context {tag_context!r} (stride {STRIDES[tag_context]}) must be coarser than "
            f"the feature the tags read (stride {stride})"
        )


def context_feature(
    x: keras.KerasTensor,
    stride: int,
    features: Mapping[str, keras.KerasTensor],
    tag_context: str | None,
    context_filters: int = CONTEXT_FILTERS,
) -> keras.KerasTensor:
    """``x`` (B, h, w, C), ``stride`` input pixels per cell, with ``features[tag_context]``
    concatenated (:func:`with_context`, ``context_filters`` channels), or ``x`` itself when
    ``tag_context`` is None."""
    _check_context(tag_context, stride)
    return x if tag_context is None else with_context(x, features[tag_context], context_filters)


def tag_map(x: keras.KerasTensor, num_keypoints: int, upscale: int) -> keras.KerasTensor:
    """Associative-embedding tags: 1x1 conv (B, h, w, C) -> (B, h, w, K), then bilinear
    upsampling by ``upscale``; output ``tags`` (B, h*upscale, w*upscale, K), float32."""
    if upscale == 1:
        return keras.layers.Conv2D(num_keypoints, 1, name="tags", dtype="float32")(x)
    tags = keras.layers.Conv2D(num_keypoints, 1, name="tag_conv")(x)
    return keras.layers.UpSampling2D(
        upscale, interpolation="bilinear", name="tags", dtype="float32"
    )(tags)


def build_ae(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    deconv_filters: int = DECONV_FILTERS,
    tag_context: str | None = None,
    context_filters: int = CONTEXT_FILTERS,
) -> dict[str, keras.KerasTensor]:
    """Simple head + AE: {"heatmaps", "tags"}, both (B, H/4, W/4, K).

    Args:
        deconv_filters: width of the three deconvolutions (ignored on HRNet).
        tag_context, context_filters: a coarser level the tags also read
            (:func:`context_feature`).
    """
    x = simple_features(features, backbone, deconv_filters)
    tags = tag_map(context_feature(x, 4, features, tag_context, context_filters), num_keypoints, 1)
    return {"heatmaps": heatmap_conv(x, num_keypoints), "tags": tags}


def build_srhead_ae(
    features: Mapping[str, keras.KerasTensor],
    backbone: BackboneSpec,
    num_keypoints: int,
    *,
    feature: str = "deconv",
    scale: float = 1.0,
    embed: int = EMBED,
    kernel_size: int = KERNEL_SIZE,
    deconv_filters: int = DECONV_FILTERS,
    tag_context: str | None = None,
    context_filters: int = CONTEXT_FILTERS,
    heatmap_context: bool = False,
) -> dict[str, keras.KerasTensor]:
    """SR head + AE: {"heatmaps", "tags"}, both (B, H*scale, W*scale, K).

    Args:
        feature: what the head reads: ``"deconv"`` (the paper: the stride-4 feature above) or
            a pyramid level ``"F2"``..``"F5"`` (e.g. ``"F3"``, stride 8, for edge backbones:
            no deconvolutions, and it learns fastest from scratch, as the top-down quickstart).
        scale: output size / input size (1: full resolution; r = stride x scale).
        embed, kernel_size: the SR head's e and large kernel (paper: 4 and 9).
        deconv_filters: width of the three deconvolutions (ignored on HRNet and for a level).
        tag_context, context_filters: a coarser level the tags also read
            (:func:`context_feature`; e.g. ``"F5"`` with ``feature="F3"``).
        heatmap_context: the SR head reads the same concatenation as the tags (needs
            ``tag_context``).
    """
    if heatmap_context and tag_context is None:
        raise ConfigError("heatmap_context: true needs tag_context (the level both read)")
    x, stride = sr_input(features, backbone, feature, deconv_filters)
    r = upscale_factor(stride, scale, "srhead_ae")
    wide = context_feature(x, stride, features, tag_context, context_filters)
    sr_feature = wide if heatmap_context else x
    heatmaps = sr_head(sr_feature, num_keypoints, embed, r, kernel_size, "sr", "heatmaps")
    return {"heatmaps": heatmaps, "tags": tag_map(wide, num_keypoints, r)}


def _with_context_level(levels: tuple[str, ...], tag_context: str | None) -> tuple[str, ...]:
    _check_level(tag_context)
    return levels if tag_context in (None, *levels) else (*levels, tag_context)


def ae_levels(backbone: BackboneSpec, tag_context: str | None = None, **_: object) -> tuple[str, ...]:
    """The pyramid levels ``ae`` reads: the simple head's, and ``tag_context``'s."""
    return _with_context_level(simple_levels(backbone), tag_context)


def srhead_ae_levels(
    backbone: BackboneSpec, feature: str = "deconv", tag_context: str | None = None, **_: object
) -> tuple[str, ...]:
    """The pyramid levels ``srhead_ae`` reads (F5 under the deconvolutions by default), and
    ``tag_context``'s."""
    return _with_context_level(sr_levels(backbone, feature), tag_context)
