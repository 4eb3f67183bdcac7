"""PyTorch twins of the papers' networks, named as their published checkpoints are.

Written from the reference layouts (mmcv / torchvision ResNet with the stride in the 3x3 conv,
HRNet's reference modules, MMPose's SimpleBaseline head, the SR-head paper's SRPose and SR
heads, SimMRPose's heads) with torch's own convolution, grouped convolution, transposed
convolution, pixel shuffle and nearest interpolation, so that importing their state dicts into
kpose and comparing heatmaps tests kpose's layouts and naming against PyTorch's numerics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BatchNorm statistic random, eval mode: kernels ~ N(0, 1/fan_in), so
    that features keep their scale through deep networks; BatchNorm scales in [0.5, 1.5] and
    variances in [0.5, 1.5]; biases, shifts and means ~ N(0, 0.2^2)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var") or (name.endswith("weight") and tensor.ndim == 1):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif tensor.ndim > 1:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / fan_in**0.5)
            else:
                tensor.copy_(0.2 * torch.randn(tensor.shape, generator=generator))
    return module.eval()


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU()] if relu else []))


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: the stride in ``conv2`` (3x3)."""

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = None
        if stride != 1 or cin != 4 * planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, 4 * planes, 1, stride, bias=False), nn.BatchNorm2d(4 * planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


class ResNet(nn.Module):
    """ResNet-50/101/152 returning the outputs of layer1..layer4 (strides 4..32)."""

    BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

    def __init__(self, depth: int = 50) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (blocks, planes) in enumerate(zip(self.BLOCKS[depth], (64, 128, 256, 512)), start=1):
            stride = 1 if i == 1 else 2
            layer = [Bottleneck(cin, planes, stride)] + [Bottleneck(4 * planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
            cin = 4 * planes

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        outputs = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            outputs.append(x)
        return outputs


class BasicBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(x + y)


class HRModule(nn.Module):
    """HRNet's multi-resolution module: four basic blocks a branch, then the fuse."""

    def __init__(self, widths: list[int], multiscale_output: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(w) for _ in range(4)]) for w in widths)
        fuse = nn.ModuleList()
        for i in range(len(widths) if multiscale_output else 1):
            row = nn.ModuleList()
            for j in range(len(widths)):
                if j > i:
                    row.append(nn.Sequential(
                        nn.Conv2d(widths[j], widths[i], 1, bias=False),
                        nn.BatchNorm2d(widths[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                elif j == i:
                    row.append(None)
                else:
                    steps = [
                        conv_bn_relu(widths[j], widths[i] if k == i - j - 1 else widths[j], 3, 2, relu=k < i - j - 1)
                        for k in range(i - j)
                    ]
                    row.append(nn.Sequential(*steps))
            fuse.append(row)
        self.fuse_layers = fuse

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        return [
            F.relu(sum(x if layer is None else layer(x) for layer, x in zip(row, xs)))
            for row in self.fuse_layers
        ]


class HRNet(nn.Module):
    """HRNet-W``width`` returning its four branches (or branch 0 alone without multiscale)."""

    def __init__(self, width: int = 32, multiscale_output: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.layer1 = nn.Sequential(Bottleneck(64, 64), *[Bottleneck(256, 64) for _ in range(3)])
        previous = [256]
        for stage, modules in ((2, 1), (3, 4), (4, 3)):
            widths = [width * 2**b for b in range(stage)]
            transition = nn.ModuleList()
            for b, w in enumerate(widths):
                if b < len(previous):
                    transition.append(conv_bn_relu(previous[b], w, 3) if previous[b] != w else None)
                else:
                    transition.append(nn.Sequential(conv_bn_relu(previous[-1], w, 3, 2)))
            setattr(self, f"transition{stage - 1}", transition)
            last = stage == 4
            setattr(self, f"stage{stage}", nn.Sequential(*[
                HRModule(widths, multiscale_output or not (last and m == modules - 1)) for m in range(modules)
            ]))
            previous = widths

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        xs = [self.layer1(x)]
        for stage in (2, 3, 4):
            transition = getattr(self, f"transition{stage - 1}")
            xs = [
                (xs[b] if layer is None else layer(xs[b])) if b < len(xs) else layer(xs[-1])
                for b, layer in enumerate(transition)
            ]
            xs = getattr(self, f"stage{stage}")(xs)
        return xs


def deconv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def deconv_layers(cin: int, count: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(count):
        layers += deconv_bn_relu(cin if i == 0 else 256, 256)
    return nn.Sequential(*layers)


class SimpleHead(nn.Module):
    """MMPose's TopdownHeatmapSimpleHead (no deconvolutions on HRNet)."""

    def __init__(self, cin: int, k: int, deconvs: int = 3) -> None:
        super().__init__()
        self.deconv_layers = deconv_layers(cin, deconvs) if deconvs else nn.Identity()
        self.final_layer = nn.Conv2d(256 if deconvs else cin, k, 1)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(xs[-1] if len(xs) > 1 else xs[0]))


class SRHead(nn.Module):
    """The SR head: optional deconvolutions, keypoint encoder, grouped conv, pixel shuffle."""

    def __init__(self, cin: int, k: int, deconvs: int = 3, embed: int = 4, r: int = 4, kernel: int = 9) -> None:
        super().__init__()
        self.r = r
        self.deconv_layers = deconv_layers(cin, deconvs) if deconvs else nn.Identity()
        self.kp_encoder = nn.Sequential(nn.Conv2d(256 if deconvs else cin, k * embed, 1), nn.ReLU())
        self.heatmap_head = nn.Conv2d(k * embed, k * r * r, kernel, 1, kernel // 2, groups=k)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        x = self.deconv_layers(xs[-1] if isinstance(self.deconv_layers, nn.Sequential) else xs[0])
        return F.pixel_shuffle(self.heatmap_head(self.kp_encoder(x)), self.r)


class ConvBlock(nn.Module):
    """SRPose's ConvNeXt-style block (BatchNorm, no layer scale)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, 1, 3, groups=c)
        self.norm = nn.BatchNorm2d(c)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.pwconv2 = nn.Linear(4 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(y))).permute(0, 3, 1, 2)
        return x + y


class Converge(nn.Module):
    def __init__(self, embed: int, r: int, kernel: int, k: int) -> None:
        super().__init__()
        self.r = r
        self.conv = nn.Conv2d(embed * k, r * r * k, kernel, 1, kernel // 2, 1, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), self.r)


class SRPoseHead(nn.Module):
    """The SR-head paper's TopDownSRPoseHead; returns every output, coarsest first."""

    def __init__(self, in_channels: list[int], k: int) -> None:
        super().__init__()
        out = [256, 128, 64, 32]
        embeds, upsample_log = [16, 8, 4, 4], [3, 2, 1, 2]
        self.lr_head = nn.Sequential(nn.Conv2d(in_channels[0], k, 1), nn.ReLU())
        self.lr_fuse = nn.Sequential(nn.Conv2d(k, out[0], 1), nn.ReLU())
        self.pre_fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, o, 1), nn.BatchNorm2d(o), nn.ReLU()) for c, o in zip(in_channels, out)
        )
        self.pre_interpolate = nn.ModuleList(
            nn.Sequential(nn.Conv2d(out[i], out[i], 3, 1, 1, groups=out[i]), nn.Conv2d(out[i], out[i + 1], 1),
                          nn.BatchNorm2d(out[i + 1]), nn.ReLU())
            for i in range(3)
        )
        self.fuse = nn.ModuleList(nn.Conv2d(2 * o, o, 1) for o in out[1:])
        self.post_fuse = nn.ModuleList(nn.Sequential(ConvBlock(o), ConvBlock(o)) for o in out[1:])
        self.kp_encoder = nn.ModuleList(
            nn.Sequential(nn.Conv2d(o, e * k, 1), nn.ReLU()) for o, e in zip(out, embeds)
        )
        self.converge = nn.ModuleList(
            Converge(e, 2**u, 11 - 2 * (4 - i), k) for i, (e, u) in enumerate(zip(embeds, upsample_log))
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = xs[::-1]
        lr = self.lr_head(xs[0])
        feat = self.pre_fuse[0](xs[0]) + self.lr_fuse(lr)
        outputs = [lr, self.converge[0](self.kp_encoder[0](feat))]
        for i in range(1, 4):
            feat = F.interpolate(self.pre_interpolate[i - 1](feat), xs[i].shape[2:])
            feat = self.fuse[i - 1](torch.cat([feat, self.pre_fuse[i](xs[i])], 1))
            feat = self.post_fuse[i - 1](feat)
            outputs.append(self.converge[i](self.kp_encoder[i](feat)))
        return outputs


class MRHeatNetHead(nn.Module):
    """SimMRPose's MRHeatNet1 / MRHeatNet2 on ResNet's C5 (modules at the top level)."""

    def __init__(self, k: int, variant: int) -> None:
        super().__init__()
        self.variant = variant
        self.deconv1 = nn.Sequential(*deconv_bn_relu(2048, 256))
        self.deconv2 = nn.Sequential(*deconv_bn_relu(256, 256))
        self.deconv3 = nn.Sequential(*deconv_bn_relu(256, 256))
        self.s_conv1 = nn.Sequential(nn.Conv2d(256, k, 1), nn.BatchNorm2d(k), nn.ReLU())
        self.s_conv2 = nn.Sequential(nn.Conv2d(256, k, 1), nn.BatchNorm2d(k), nn.ReLU())
        self.s_deconv1 = nn.Sequential(*deconv_bn_relu(k, k))
        self.s_deconv2 = nn.ConvTranspose2d(k, k, 4, 2, 1, bias=False)
        if variant == 2:
            self.s_deconv12 = nn.ConvTranspose2d(k, k, 4, 2, 1, bias=False)
        self.final_layer = nn.Conv2d(256, k, 1)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        d1 = self.deconv1(xs[-1])
        d2 = self.deconv2(d1)
        main = self.final_layer(self.deconv3(d2))
        if self.variant == 1:
            return main + self.s_deconv2(self.s_conv2(d2) + self.s_deconv1(self.s_conv1(d1)))
        return main + self.s_deconv12(self.s_deconv1(self.s_conv1(d1))) + self.s_deconv2(self.s_conv2(d2))


class MRFeaNetHead(nn.Module):
    """SimMRPose's MRFeaNet1 / MRFeaNet2 on ResNet's C2..C5."""

    def __init__(self, k: int, variant: int) -> None:
        super().__init__()
        wide = variant == 2
        self.deconv11 = nn.Sequential(*deconv_bn_relu(2048, 1024 if wide else 256))
        self.deconv12 = nn.Sequential(*deconv_bn_relu(1024 if wide else 256, 512 if wide else 256))
        self.deconv13 = nn.Sequential(*deconv_bn_relu(512 if wide else 256, 256))
        self.deconv21 = nn.Sequential(*deconv_bn_relu(1024, 512 if wide else 256))
        self.deconv22 = nn.Sequential(*deconv_bn_relu(512 if wide else 256, 256))
        self.deconv3 = nn.Sequential(*deconv_bn_relu(512, 256))
        self.final_layer = nn.Conv2d(256, k, 1)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        c2, c3, c4, c5 = xs
        x = (c2 + self.deconv3(c3) + self.deconv22(self.deconv21(c4))
             + self.deconv13(self.deconv12(self.deconv11(c5)))) / 4
        return self.final_layer(x)


class PoseNet(nn.Module):
    """A backbone and a head, as a checkpoint names them: under ``backbone.`` and
    ``keypoint_head.`` (MMPose) or side by side at the top level (SimMRPose)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, prefixed: bool = True) -> None:
        super().__init__()
        self.prefixed = prefixed
        if prefixed:
            self.backbone, self.keypoint_head = backbone, head
        else:
            self.add_module("body", backbone)
            self.add_module("head_", head)

    def forward(self, x: torch.Tensor):
        if self.prefixed:
            return self.keypoint_head(self.backbone(x))
        return self.head_(self.body(x))

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """The state dict in the checkpoint's naming."""
        if self.prefixed:
            return self.state_dict()
        return {**self.body.state_dict(), **self.head_.state_dict()}
