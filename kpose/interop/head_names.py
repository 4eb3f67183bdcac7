"""How the papers' PyTorch code names the heads kpose builds.

- SimpleBaseline (MMPose ``TopdownHeatmapSimpleHead`` / ``HeatmapHead``):
  ``deconv_layers.{0,3,6}`` transposed convs, ``deconv_layers.{1,4,7}`` BatchNorms (ReLUs at
  2, 5, 8), ``final_layer`` the 1x1 conv to K. On HRNet only ``final_layer``.
- SR head (the SR-head paper's ``BottomUpSimpleSRHead`` without its tag conv, the layout of
  the top-down SR head it reports): the SimpleBaseline deconvolutions where it reads them,
  ``kp_encoder.0`` (1x1 conv to K * e), ``heatmap_head`` (grouped conv, groups K).
- SRPose (``TopDownSRPoseHead``): ``lr_head.0``, ``lr_fuse.0``, ``pre_fuse.{0..3}``
  (conv, BN), ``pre_interpolate.{0..2}`` (depthwise conv, 1x1 conv, BN), ``fuse.{0..2}``,
  ``post_fuse.{0..2}.{0,1}`` (ConvNeXt blocks: ``dwconv``, ``norm``, ``pwconv1``,
  ``pwconv2``), and per SR head ``kp_encoder.{i}.0`` and ``converge.{i}.conv``. Index ``i``
  counts stages from the coarsest: kpose's ``fuse4`` / ``fuse3`` / ``fuse2`` are stages 1, 2, 3.
- SimMRPose (``PoseResNet`` of mrheat1/2, mrfea1/2): ``deconv{1,2,3}`` (MRHeatNet) or
  ``deconv{11,12,13}``, ``deconv{21,22}``, ``deconv3`` (MRFeaNet) as ``Sequential(deconv, BN,
  ReLU)``, side branches ``s_conv{1,2}`` (conv, BN), ``s_deconv1`` (deconv, BN),
  bare ``s_deconv2`` / ``s_deconv12``, and ``final_layer``.
"""

from __future__ import annotations

import re

from kpose.interop.importer import Rule

_BN_INDEX = {"conv": "0", "deconv": "0", "bn": "1"}
# kpose's SRPose fuse modules by the level they add, and the reference's stage index.
_SRPOSE_STAGE = {"4": 1, "3": 2, "2": 3}


def _deconv_layers() -> Rule:
    """SimpleBaseline's ``deconv{i}_{deconv|bn}`` (i from 1) -> ``deconv_layers.{3(i-1) + 0|1}``."""
    return (
        r"deconv(?P<i>[123])_(?P<kind>deconv|bn)",
        lambda m: f"deconv_layers.{3 * (int(m['i']) - 1) + int(_BN_INDEX[m['kind']])}",
    )


def _simple_rules() -> list[Rule]:
    return [_deconv_layers(), (r"heatmaps", lambda m: "final_layer")]


def _srhead_rules() -> list[Rule]:
    return [
        _deconv_layers(),
        (r"sr_encoder", lambda m: "kp_encoder.0"),
        (r"sr_lkconv|heatmaps", lambda m: "heatmap_head"),
    ]


def _srpose_rules() -> list[Rule]:
    def stage(m: re.Match[str]) -> int:
        return _SRPOSE_STAGE[m["level"]]

    fuse = r"fuse(?P<level>[234])"
    convnext_parts = {"dwconv": "dwconv", "bn": "norm", "pwconv1": "pwconv1", "pwconv2": "pwconv2"}
    interpolate_parts = {"dwconv": "0", "pwconv": "1", "pw_bn": "2"}
    return [
        (r"lr_heatmaps_conv", lambda m: "lr_head.0"),
        (r"fuse5_heatmap_conv", lambda m: "lr_fuse.0"),
        (r"fuse5_feat_(?P<kind>conv|bn)", lambda m: f"pre_fuse.0.{_BN_INDEX[m['kind']]}"),
        (
            fuse + r"_(?P<part>dwconv|pwconv|pw_bn)",
            lambda m: f"pre_interpolate.{stage(m) - 1}.{interpolate_parts[m['part']]}",
        ),
        (
            fuse + r"_lateral_(?P<kind>conv|bn)",
            lambda m: f"pre_fuse.{stage(m)}.{_BN_INDEX[m['kind']]}",
        ),
        (fuse + r"_mix", lambda m: f"fuse.{stage(m) - 1}"),
        (
            fuse + r"_convnext(?P<block>\d)_(?P<part>dwconv|bn|pwconv1|pwconv2)",
            lambda m: f"post_fuse.{stage(m) - 1}.{m['block']}.{convnext_parts[m['part']]}",
        ),
        (r"sr(?P<i>[1-4])_encoder", lambda m: f"kp_encoder.{int(m['i']) - 1}.0"),
        (r"sr(?P<i>[1-4])_lkconv|(?P<last>heatmaps)", lambda m: f"converge.{3 if m['last'] else int(m['i']) - 1}.conv"),
    ]


def _mrheatnet_rules(variant: int) -> list[Rule]:
    # kpose's upsampling deconvs of the side branches, by the reference's module name.
    upsampling = (
        {"branch1_up1": "s_deconv1", "branch12_up1": "s_deconv2"}
        if variant == 1
        else {"branch1_up1": "s_deconv1", "branch1_up2": "s_deconv12", "branch2_up1": "s_deconv2"}
    )
    bare = {name for name, module in upsampling.items() if module != "s_deconv1"}

    def upsample(m: re.Match[str]) -> str:
        module = upsampling[m["name"]]
        return module if m["name"] in bare else f"{module}.{_BN_INDEX[m['kind'] or 'deconv']}"

    names = "|".join(upsampling)
    return [
        (r"deconv(?P<i>[123])_(?P<kind>deconv|bn)", lambda m: f"deconv{m['i']}.{_BN_INDEX[m['kind']]}"),
        (r"main_heatmaps", lambda m: "final_layer"),
        (r"branch(?P<i>[12])_(?P<kind>conv|bn)", lambda m: f"s_conv{m['i']}.{_BN_INDEX[m['kind']]}"),
        (rf"(?P<name>{names})(?:_(?P<kind>deconv|bn))?", upsample),
    ]


def _mrfeanet_rules() -> list[Rule]:
    path = {"F5": "1", "F4": "2", "F3": ""}  # deconv1{n}, deconv2{n}, deconv3
    return [
        (
            r"(?P<level>F[345])_deconv(?P<n>[123])_(?P<kind>deconv|bn)",
            lambda m: f"deconv{3 if m['level'] == 'F3' else path[m['level']] + m['n']}.{_BN_INDEX[m['kind']]}",
        ),
        (r"heatmaps", lambda m: "final_layer"),
    ]


HEAD_RULES: dict[str, list[Rule]] = {
    "simplebaseline": _simple_rules(),
    "srhead": _srhead_rules(),
    "srpose": _srpose_rules(),
    "mrheatnet1": _mrheatnet_rules(1),
    "mrheatnet2": _mrheatnet_rules(2),
    "mrfeanet1": _mrfeanet_rules(),
    "mrfeanet2": _mrfeanet_rules(),
}
"""Head name -> its naming rules; the heads a checkpoint can be imported into."""
