"""Offscreen RGB-D rendering of a scene's `view` camera in one pass (MuJoCo's OpenGL renderer).

MuJoCo renders with a reversed-Z depth buffer (`mjDEPTH_ZEROFAR`): a buffer value `b` in [0, 1] maps
to z-depth along the optical axis `z = d' / (b + c')` with `c' = -c/2 - 1/2`, `d' = -d/2`, where
`c = -(f + n) / (f - n)` and `d = -2 f n / (f - n)` are the projection's entries (n, f: clip planes
in metres). Pixels with no geometry come back at the far plane and are set to NaN.
"""

from __future__ import annotations

import numpy as np

from robot.sim.cameras import MUJOCO_FROM_CV
from robot.sim.errors import SimRenderError


class FrameRenderer:
    """Renders RGB (H, W, 3) uint8 and z-depth (H, W) float32 metres from a posed camera."""

    def __init__(self, model, width: int, height: int, camera_id: int):
        import mujoco

        self.model, self.width, self.height, self.camera_id = model, width, height, camera_id
        try:
            self.gl = mujoco.GLContext(width, height)
            self.gl.make_current()
        except Exception as exc:  # noqa: BLE001 - any GL failure means no offscreen rendering here
            raise SimRenderError(f"cannot open an offscreen GL context ({exc}); set MUJOCO_GL=egl or osmesa") from exc
        self.scene = mujoco.MjvScene(model, maxgeom=1000)
        self.context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)  # no text drawn: smallest font, 0.2 s faster
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.context)
        self.context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self.camera.fixedcamid = camera_id
        self.option = mujoco.MjvOption()
        self.rect = mujoco.MjrRect(0, 0, width, height)
        self.rgb = np.empty((height, width, 3), dtype=np.uint8)
        self.depth = np.empty((height, width), dtype=np.float32)
        near = model.vis.map.znear * model.stat.extent
        far = model.vis.map.zfar * model.stat.extent
        self.far = far
        c = -(far + near) / (far - near)
        d = -(2.0 * far * near) / (far - near)
        self.c_rev, self.d_rev = -0.5 * c - 0.5, -0.5 * d

    def render(self, data, rotation: np.ndarray, position: np.ndarray, with_depth: bool = True):
        """Render from a camera at `position` (3,) with camera-to-world `rotation` (3, 3, OpenCV axes).

        Returns:
            rgb (H, W, 3) uint8 and depth (H, W) float32 metres (NaN where nothing was hit), or None.
        """
        import mujoco

        self.gl.make_current()
        data.cam_xpos[self.camera_id] = position
        data.cam_xmat[self.camera_id] = (rotation @ MUJOCO_FROM_CV).ravel()
        mujoco.mjv_updateScene(self.model, data, self.option, None, self.camera, mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        mujoco.mjr_render(self.rect, self.scene, self.context)
        mujoco.mjr_readPixels(self.rgb, self.depth if with_depth else None, self.rect, self.context)
        rgb = np.flipud(self.rgb).copy()
        if not with_depth:
            return rgb, None
        buffer = np.flipud(self.depth).astype(np.float64)
        depth = (self.d_rev / (buffer + self.c_rev)).astype(np.float32)  # (H, W) metres
        depth[(buffer <= 0.0) | (depth >= 0.999 * self.far)] = np.nan
        return rgb, depth

    def close(self) -> None:
        """Free the GL resources."""
        if getattr(self, "context", None) is not None:
            self.context.free()
            self.context = None
        if getattr(self, "gl", None) is not None:
            self.gl.free()
            self.gl = None
