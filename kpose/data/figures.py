"""Articulated figures for the synthetic dataset: where the joints are, and what to draw.

Two figure models:

* :class:`BodyModel`, a human body for schemas whose keypoint names all name body points
  (COCO, MPII, CrowdPose and user sets that reuse those names). A pose is built in 3D by
  forward kinematics (spine lean, head turn, shoulder and hip angles, elbow and knee bends),
  turned about the vertical axis (front, back and side views) and projected orthographically.
* :class:`GraphModel`, for any other schema: a fixed 2D template laid out from the schema's
  skeleton graph (left members of flip pairs on the image right, like a person facing the
  camera), jittered per instance.

Both return a :class:`Figure`: keypoint positions in image pixels and a list of
:class:`Part` shapes with depths. The renderer paints parts far to near; each keypoint is a
part too (a disc), so a joint hidden behind a nearer limb, head or person ends up occluded.

Units: body models work in body heights (standing height = 1); figures are in image pixels.
Depth grows away from the camera. This module imports only numpy.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kpose.keypoints import KeypointSchema

PartKind = Literal["capsule", "polygon", "disc", "marker"]

MARKER_MIN_RADIUS = 3.0  # pixels: smaller discs lose their colour to JPEG chroma subsampling


@dataclass(frozen=True)
class Part:
    """One shape of a figure.

    Attributes:
        kind: ``capsule`` (thick segment through ``points``), ``polygon`` (filled),
            ``disc`` (circle of ``radius`` at ``points[0]``) or ``marker`` (the disc that
            shows keypoint ``keypoint``).
        points: ``(n, 2)`` image pixels.
        radius: half thickness of a capsule or radius of a disc/marker, pixels.
        depth: distance from the camera in arbitrary units; far parts are painted first.
        material: index into the figure's materials (ignored for markers).
        keypoint: schema index of a marker's keypoint, else -1.
    """

    kind: PartKind
    points: np.ndarray
    radius: float
    depth: float
    material: int = 0
    keypoint: int = -1


@dataclass(frozen=True)
class Figure:
    """A posed figure in image pixels.

    Attributes:
        keypoints: ``(K, 2)`` schema keypoints, image pixels (where their markers are drawn).
        parts: shapes to paint, in any order (the renderer sorts them by depth).
        height: the figure's size in pixels (standing height for bodies).
    """

    keypoints: np.ndarray
    parts: list[Part]
    height: float


# Materials shared by both models: what a part is made of; the renderer picks the colours.
SKIN, TOP, BOTTOM, HAIR, SHOES, FEATURE = range(6)
NUM_MATERIALS = 6

# Canonical body points and the spellings schemas use for them.
BODY_POINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "head_top", "upper_neck", "neck",
    "thorax", "pelvis", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle",
)
_ALIASES = {
    "head": "head_top", "top_head": "head_top", "headtop": "head_top", "crown": "head_top",
    "neck_top": "upper_neck", "upperneck": "upper_neck", "chin": "upper_neck",
    "neck_base": "neck", "chest": "thorax", "spine_chest": "thorax",
    "mid_hip": "pelvis", "hip_center": "pelvis", "center_hip": "pelvis", "root": "pelvis",
}


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    for short, side in (("l_", "left_"), ("r_", "right_")):
        if key.startswith(short):
            key = side + key[len(short):]
    for side in ("left", "right"):  # shoulder_left -> left_shoulder
        if key.endswith("_" + side):
            key = f"{side}_{key[: -len(side) - 1]}"
    return _ALIASES.get(key, key)


def body_point_names(schema: KeypointSchema) -> list[str] | None:
    """The body point of each schema keypoint, or None if some name is not a body point."""
    names = [_canonical(n) for n in schema.keypoints]
    return names if all(n in BODY_POINTS for n in names) else None


def _rot_x(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


def _rot_y(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])


def _rot_z(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _bend(limb: np.ndarray, toward: np.ndarray, angle_deg: float) -> np.ndarray:
    """Turn unit vector ``limb`` by ``angle_deg`` toward the direction ``toward``."""
    normal = toward - np.dot(toward, limb) * limb
    if np.linalg.norm(normal) < 1e-6:  # toward is parallel to the limb: any normal will do
        normal = np.cross(limb, [1.0, 0.0, 0.0])
    t = np.deg2rad(angle_deg)
    return np.cos(t) * limb + np.sin(t) * _unit(normal)


class BodyModel:
    """Human figures for schemas that name body points (see :func:`body_point_names`).

    Body frame: x = the person's left, y = down, z = the way the person faces; a person
    facing the camera has its left on the image right. Lengths in body heights.
    """

    # name: (length, half thickness) in body heights
    _LIMBS = {
        "upper_arm": (0.17, 0.030), "forearm": (0.15, 0.024), "thigh": (0.245, 0.040),
        "shin": (0.245, 0.032), "torso": (0.30, 0.075), "neck": (0.055, 0.026),
    }
    _HEAD_RADIUS = 0.065
    _SHOULDER_HALF = 0.115
    _HIP_HALF = 0.075

    def __init__(self, schema: KeypointSchema) -> None:
        names = body_point_names(schema)
        if names is None:
            raise ValueError(f"schema {schema.name!r} has keypoints that are not body points")
        self.schema = schema
        self._names = names

    def sample(self, rng: np.random.Generator, height_px: float, anchor: np.ndarray) -> Figure:
        """A random pose of standing height ``height_px`` with its pelvis at ``anchor`` (x, y)."""
        pts, parts3d = self._pose(rng)
        yaw = rng.uniform(-180.0, 180.0)
        roll = rng.normal(0.0, 8.0) if rng.random() > 0.05 else rng.uniform(-100.0, 100.0)
        # body frame -> camera frame (x right, y down, z away): facing the camera means
        # the body's forward axis points to -z; then turn about the vertical axis.
        to_cam = _rot_y(yaw) @ np.diag([1.0, 1.0, -1.0])
        cam = {k: to_cam @ v for k, v in pts.items()}
        c, s = np.cos(np.deg2rad(roll)), np.sin(np.deg2rad(roll))
        plane = np.array([[c, -s], [s, c]]) * height_px

        def image(p3: np.ndarray) -> np.ndarray:
            return plane @ p3[:2] + anchor

        parts = []
        for kind, keys, radius, material in parts3d:
            points = np.array([image(cam[k]) for k in keys])
            depth = float(np.mean([cam[k][2] for k in keys]))
            parts.append(Part(kind, points, radius * height_px, depth, material))
        keypoints = np.array([image(cam[n]) for n in self._names])
        marker_r = max(MARKER_MIN_RADIUS, 0.018 * height_px)
        for i, name in enumerate(self._names):
            # A marker sits just in front of its joint, so its own limb does not hide it
            # but a nearer limb, the head or another person does.
            depth = float(cam[name][2]) - 0.1
            parts.append(Part("marker", keypoints[i : i + 1], marker_r, depth, keypoint=i))
        return Figure(keypoints=keypoints, parts=parts, height=float(height_px))

    def _pose(self, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list]:
        """Body points (body frame, body heights) and 3D parts as (kind, keys, radius, material)."""
        grow = rng.uniform(0.92, 1.08, size=8)
        limb = {
            k: (length * grow[i], half * rng.uniform(0.85, 1.2))
            for i, (k, (length, half)) in enumerate(self._LIMBS.items())
        }
        down = np.array([0.0, 1.0, 0.0])
        fwd = np.array([0.0, 0.0, 1.0])
        lean = _rot_z(rng.normal(0, 6)) @ _rot_x(-abs(rng.normal(0, 12)))
        spine = lean @ -down  # pelvis -> neck
        lateral = lean @ np.array([1.0, 0.0, 0.0])
        p: dict[str, np.ndarray] = {"pelvis": np.zeros(3)}
        p["neck"] = p["pelvis"] + spine * limb["torso"][0]
        p["thorax"] = p["neck"] - spine * 0.035
        p["upper_neck"] = p["neck"] + spine * limb["neck"][0]
        head_turn = _rot_y(rng.normal(0, 25)) @ _rot_x(rng.normal(0, 10)) @ lean
        head_up, head_fwd = head_turn @ -down, head_turn @ fwd
        head_left = head_turn @ np.array([1.0, 0.0, 0.0])
        r = self._HEAD_RADIUS * grow[6]
        p["head_center"] = p["upper_neck"] + head_up * 0.9 * r
        p["head_top"] = p["head_center"] + head_up * r
        p["nose"] = p["head_center"] + head_fwd * 0.95 * r - head_up * 0.2 * r
        p["hair"] = p["head_center"] - head_fwd * 0.3 * r + head_up * 0.15 * r  # covers the back of the head
        for side, sign in (("left", 1.0), ("right", -1.0)):
            eye = head_fwd * 0.78 + head_up * 0.18 + head_left * sign * 0.38
            p[f"{side}_eye"] = p["head_center"] + eye * r
            p[f"{side}_ear"] = p["head_center"] + head_left * sign * 0.97 * r - head_fwd * 0.05 * r
            shoulder = p["neck"] + lateral * sign * self._SHOULDER_HALF * grow[7] - spine * 0.02
            p[f"{side}_shoulder"] = shoulder
            raised = rng.random() < 0.35
            abduction = rng.uniform(45, 170) if raised else rng.uniform(-5, 45)
            # abduction turns a limb out to its own side; flexion turns it forward (+z)
            upper = lean @ _rot_z(-sign * abduction) @ _rot_x(rng.uniform(-40, 110)) @ down
            p[f"{side}_elbow"] = shoulder + upper * limb["upper_arm"][0]
            twist = _rot_y(sign * rng.uniform(-40, 40)) @ fwd
            lower = _bend(upper, twist, rng.uniform(0, 140))
            p[f"{side}_wrist"] = p[f"{side}_elbow"] + lower * limb["forearm"][0]
            p[f"{side}_hand"] = p[f"{side}_wrist"] + lower * 0.045
            hip = p["pelvis"] + lateral * sign * self._HIP_HALF
            p[f"{side}_hip"] = hip
            flexion = rng.normal(0, 25) if rng.random() < 0.75 else rng.uniform(30, 100)
            thigh = _rot_z(-sign * rng.uniform(-5, 30)) @ _rot_x(flexion) @ down
            p[f"{side}_knee"] = hip + thigh * limb["thigh"][0]
            shin = _bend(thigh, -fwd, rng.uniform(0, min(130, max(flexion, 0) + 40)))
            p[f"{side}_ankle"] = p[f"{side}_knee"] + shin * limb["shin"][0]
            p[f"{side}_toe"] = p[f"{side}_ankle"] + _unit(fwd + 0.3 * down) * 0.055
        parts = [
            ("polygon", ("left_shoulder", "right_shoulder", "right_hip", "left_hip"), 0.0, TOP),
            ("capsule", ("neck", "pelvis"), limb["torso"][1], TOP),
            ("capsule", ("neck", "upper_neck"), limb["neck"][1], SKIN),
            ("disc", ("head_center",), r, SKIN),
            ("disc", ("hair",), 0.92 * r, HAIR),
        ]
        sleeve = SKIN if rng.random() < 0.4 else TOP
        for side in ("left", "right"):
            parts += [
                ("capsule", (f"{side}_shoulder", f"{side}_elbow"), limb["upper_arm"][1], TOP),
                ("capsule", (f"{side}_elbow", f"{side}_wrist"), limb["forearm"][1], sleeve),
                ("disc", (f"{side}_hand",), 0.028, SKIN),
                ("capsule", (f"{side}_hip", f"{side}_knee"), limb["thigh"][1], BOTTOM),
                ("capsule", (f"{side}_knee", f"{side}_ankle"), limb["shin"][1], BOTTOM),
                ("capsule", (f"{side}_ankle", f"{side}_toe"), 0.022, SHOES),
                ("disc", (f"{side}_eye",), 0.012, FEATURE),
            ]
        parts.append(("disc", ("nose",), 0.01, FEATURE))
        return p, parts


class GraphModel:
    """Figures for schemas with keypoints that are not body points: a skeleton-graph layout."""

    def __init__(self, schema: KeypointSchema) -> None:
        self.schema = schema
        self.template = self._layout(schema)

    @staticmethod
    def _layout(schema: KeypointSchema) -> np.ndarray:
        """``(K, 2)`` template positions, unit size, centred at the origin (deterministic)."""
        k = schema.num_keypoints
        rng = np.random.default_rng(zlib.crc32(",".join(schema.keypoints).encode()))
        neighbours: list[list[int]] = [[] for _ in range(k)]
        for a, b in schema.skeleton:
            neighbours[a].append(b)
            neighbours[b].append(a)
        mirror_of = {b: a for a, b in schema.flip_pairs} | {a: b for a, b in schema.flip_pairs}
        lefts = {a for a, _ in schema.flip_pairs}
        pos = np.full((k, 2), np.nan)
        # Lay out each connected component by breadth-first search from its best-connected
        # node. Left members of flip pairs go to the image right (like a person facing the
        # camera) and a node whose partner is placed takes the partner's mirror image.
        for n, root in enumerate(sorted(range(k), key=lambda i: -len(neighbours[i]))):
            if not np.isnan(pos[root, 0]):
                continue
            pos[root] = rng.uniform(-0.3, 0.3, 2) if n else 0.0  # later components: nearby
            queue = deque([root])
            while queue:
                node = queue.popleft()
                for child in neighbours[node]:
                    if not np.isnan(pos[child, 0]):
                        continue
                    partner = mirror_of.get(child)
                    if partner is not None and not np.isnan(pos[partner, 0]):
                        pos[child] = (-pos[partner, 0], pos[partner, 1])
                    else:
                        angle = rng.uniform(0, 2 * np.pi)
                        step = np.array([np.cos(angle), np.sin(angle)])
                        pos[child] = pos[node] + rng.uniform(0.2, 0.35) * step
                        if partner is not None:
                            side = 1.0 if child in lefts else -1.0
                            pos[child, 0] = side * (abs(pos[child, 0]) + 0.05)
                    queue.append(child)
        pos -= pos.mean(axis=0)
        extent = max(float(np.ptp(pos, axis=0).max()), 1e-6)
        return pos / extent

    def sample(self, rng: np.random.Generator, height_px: float, anchor: np.ndarray) -> Figure:
        """A jittered, rotated copy of the template of size ``height_px`` centred at ``anchor``."""
        angle = np.deg2rad(rng.normal(0, 15))
        c, s = np.cos(angle), np.sin(angle)
        points = self.template + rng.normal(0, 0.04, self.template.shape)
        keypoints = points @ (np.array([[c, s], [-s, c]]) * height_px) + anchor
        thickness = 0.035 * height_px
        depth = rng.uniform(0, 1, len(self.schema.skeleton))
        parts = [
            Part("capsule", keypoints[[a, b]], thickness, float(d), TOP if i % 2 else BOTTOM)
            for i, ((a, b), d) in enumerate(zip(self.schema.skeleton, depth))
        ]
        marker_r = max(MARKER_MIN_RADIUS, 0.025 * height_px)
        for i in range(len(keypoints)):  # a joint disc under each marker, markers on top
            parts.append(Part("disc", keypoints[i : i + 1], 1.3 * thickness, 1.0, SKIN))
            parts.append(Part("marker", keypoints[i : i + 1], marker_r, -1.0, keypoint=i))
        return Figure(keypoints=keypoints, parts=parts, height=float(height_px))


def figure_model(schema: KeypointSchema) -> BodyModel | GraphModel:
    """The human body model if every keypoint names a body point, else a graph layout."""
    return BodyModel(schema) if body_point_names(schema) is not None else GraphModel(schema)
