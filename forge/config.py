"""Forge settings: one dataclass, and the subset of it that changes the output (the config hash)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from forge.errors import InputError
from store.trace import MAX_STEPS

DEPTH_MODES = ("auto", "sensor", "sfm", "none")
CAMERA_MODES = ("auto", "static", "moving")

# Fields that only steer how the work is run, never what is written: they stay out of the hash.
RUN_ONLY_FIELDS = frozenset({"workers", "force", "dry_run", "sfm_threads"})
# Fields that describe the video, not the forge settings: they enter video attrs, not the hash.
LABEL_FIELDS = frozenset({"instruction", "embodiment"})
# Settings added after stores were forged, left out of the hash at their "off" value: stores forged before
# they existed keep their forge groups (and nothing is re-forged) while the setting is off.
ADDED_OFF_VALUES = {"colour_drift": 0.0, "plain_objects": False}


@dataclass
class ForgeConfig:
    """How videos become traces.

    Attributes:
        depth: "auto" (sensor depth when a sidecar has it, else SfM for a moving camera, else none),
            "sensor" (require sensor depth), "sfm" (reconstruction depth, needs a moving camera),
            "none" (2D-only traces, z is NaN).
        camera: "auto" (decide from background motion), "static" or "moving".
        query_every: a new 20x20 grid is laid every this many decoded frames.
        max_steps: frames tracked from each query frame (and retargeted steps), at most 128.
        min_track_frames: a query frame needs at least this many frames after it in its segment.
        stride: decode every `stride`-th frame.
        max_side: frames are downscaled so their longer side is at most this many pixels.
        max_pixels: frames with more pixels than this (before downscaling) are refused as absurd.
        cut_threshold: a scene cut when the colour-histogram correlation of consecutive frames
            drops below this (0..1).
        min_segment_frames: segments shorter than this (after cuts) are dropped.
        still_threshold: a frame whose mean absolute grey difference to the last kept frame is below
            this (grey levels, 0..255) is a static stretch and skipped.
        static_motion_px: the camera is static when the median grid displacement stays below this
            many pixels over a segment.
        lk_window: Lucas-Kanade window side in pixels.
        lk_levels: pyramid levels above the base image.
        fb_threshold: forward-backward error (pixels) above which a point is lost for good.
        still_patch: a point Lucas-Kanade loses (a textureless surface) stays exactly in place when the
            camera stood still in that frame, the window around it changed by under this many grey
            levels (0..255) and the dense flow barely moves it; 0 turns the rule off.
        flow_fallback: points Lucas-Kanade loses follow dense optical flow when the flow's
            forward-backward error is below this many pixels; 0 turns the fallback off (see
            `forge.tracking` for the order of both).
        reacquire_every: every this many frames, points lost to an occlusion are looked for again by their
            look in the query frame, and the unseen stretch between is bridged by a straight line (kept
            unseen: `visible` false, position finite); 0 turns it off (see `forge.reacquire`).
        colour_drift: a tracked point whose colour moved further than this many grey levels (0..255, mean
            over channels) from its colour in the query frame has slid onto another surface and is lost;
            0 (the default) turns the check off (see `forge.tracking`). Measured against the simulator's exact
            tracks (`benchmarks/forge_bench.py --cases sim_tracking_human,sim_tracking_other_robot`), 25 cuts the
            carried block's tracked point-frames over 5 px off from 18 % to 3 % (human hand) and 17 % to 7 %
            (other robot) at no cost to the accurately tracked moving points, but loses a third of those on
            the SO-101's shaded links (56 % to 35 %). A pretraining corpus forged with it is worse to learn
            from: its moving points kept to the end moved less (the traces are shorter), and the prior trained
            on it completes 10 of 48 simulated `place_block` trials against 28 of 48 without it (seed 1,
            `benchmarks/sim_success.py --forge-colour-drift 25`), so it stays off by default.
        plain_objects: follow small plain-coloured objects (a ball, a block) through occlusions: a tracked point
            whose colour changes by more than `forge.tracking.PLAIN_COLOUR_STEP` grey levels from one frame to the next has
            slid onto another surface and is lost, and lost points on a plain region of an object's size are
            looked for again among the regions of their colour every `reacquire_every` frames (`forge.blobs`).
            Measured against the simulator's exact tracks (`benchmarks/forge_bench.py --cases sim_tracking_human`
            and `--task ball_in_bin`); off by default until a prior trained on a corpus forged with it is measured.
        sfm_max_features: SIFT features per image for the reconstruction.
        sfm_overlap: each image is matched with this many following images.
        sfm_threads: CPU threads for pycolmap (run-only: not in the config hash). 1 makes the reconstruction
            repeatable run to run; 2 maps in a varying order (z endpoint error 0.52-0.63 cm across runs on
            the benchmark's scene) for ~15 % more speed.
        sfm_keyframes: frames of a segment given to pycolmap (evenly spaced); the others' poses are
            interpolated.
        bundle_rounds: rounds of bundle adjustment of every frame's pose on the grid tracks after
            SfM (0: off; measured on the synthetic scene it gains ~0.05 cm for ~15 s per minute of video).
        seed: random seed for RANSAC and the reconstruction.
        instruction: instruction used when a video has no sidecar instruction (None: folder name).
        embodiment: embodiment used when a video has no sidecar embodiment.
        workers: processes forging videos in parallel.
        force: re-forge videos already present with the same settings.
        dry_run: list what would be done; write nothing.
    """

    depth: str = "auto"
    camera: str = "auto"
    query_every: int = 16
    max_steps: int = MAX_STEPS
    min_track_frames: int = 8
    stride: int = 1
    max_side: int = 640
    max_pixels: int = 8192 * 8192
    cut_threshold: float = 0.6
    min_segment_frames: int = 8
    still_threshold: float = 0.4
    static_motion_px: float = 1.5
    lk_window: int = 11
    lk_levels: int = 3
    fb_threshold: float = 0.5
    still_patch: float = 2.0
    flow_fallback: float = 1.0
    reacquire_every: int = 4
    colour_drift: float = 0.0
    plain_objects: bool = False
    sfm_max_features: int = 1024
    sfm_overlap: int = 6
    sfm_threads: int = 1
    sfm_keyframes: int = 16
    bundle_rounds: int = 0
    seed: int = 0
    instruction: str | None = None
    embodiment: str = "human"
    workers: int = 1
    force: bool = False
    dry_run: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `InputError` naming the first bad setting and its fix."""
        if self.depth not in DEPTH_MODES:
            raise InputError(f"--depth {self.depth!r} is not one of {', '.join(DEPTH_MODES)}; pick one of them")
        if self.camera not in CAMERA_MODES:
            raise InputError(f"--camera {self.camera!r} is not one of {', '.join(CAMERA_MODES)}; pick one of them")
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise InputError(f"--max-steps {self.max_steps} is outside 1..{MAX_STEPS}; pass a value in that range")
        positive = {"query_every": self.query_every, "stride": self.stride, "workers": self.workers,
                    "sfm_threads": self.sfm_threads, "min_track_frames": self.min_track_frames, "min_segment_frames": self.min_segment_frames}
        for name, value in positive.items():
            if value < 1:
                raise InputError(f"--{name.replace('_', '-')} {value} must be at least 1; pass a positive integer")
        if self.max_side < 32:
            raise InputError(f"max_side {self.max_side} is below 32 pixels; pass at least 32")
        if self.colour_drift < 0:
            raise InputError(f"colour_drift {self.colour_drift} is negative; pass 0 (off) or a grey-level difference")
        if self.reacquire_every < 0:
            raise InputError(f"reacquire_every {self.reacquire_every} is negative; pass 0 (off) or a frame count")
        if self.plain_objects and self.reacquire_every == 0:
            raise InputError("plain_objects looks for lost points again, which reacquire_every 0 turns off; pass --reacquire-every 4")
        if self.sfm_keyframes < 3 or self.bundle_rounds < 0:
            raise InputError(f"sfm_keyframes {self.sfm_keyframes} / bundle_rounds {self.bundle_rounds} must be >= 3 / >= 0")
        if self.lk_window < 5 or self.lk_window % 2 == 0:
            raise InputError(f"lk_window {self.lk_window} must be an odd number >= 5; pass e.g. 21")
        if self.min_track_frames > self.max_steps + 1:
            raise InputError(
                f"min_track_frames {self.min_track_frames} exceeds max_steps + 1 = {self.max_steps + 1}; lower it"
            )

    def hashed(self) -> dict:
        """The settings that change the output; their hash keys the store's forge group."""
        return {k: v for k, v in asdict(self).items()
                if k not in RUN_ONLY_FIELDS | LABEL_FIELDS and not (k in ADDED_OFF_VALUES and v == ADDED_OFF_VALUES[k])}

    def as_dict(self) -> dict:
        """Every setting, for the forge attrs."""
        return asdict(self)


def field_names() -> list[str]:
    """Names of every `ForgeConfig` field."""
    return [f.name for f in fields(ForgeConfig)]
