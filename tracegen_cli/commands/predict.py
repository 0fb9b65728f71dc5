"""`tracegen predict`: an image (+ depth) and an instruction -> a trace file `execute` consumes as it is.

Single mode: `--image IMG --instruction TEXT --out trace.npz [--render overlay.png]`.
Batch mode: `--images DIR --instructions table.csv|json --out OUT_DIR [--render RENDER_DIR]`, one
`<image stem>.npz` (and `.png`) per row. Every input is read and checked before the model loads, and
every output is written atomically, so a bad input leaves nothing half-written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from tracegen_cli.console import console, settings


class Sampler(StrEnum):
    euler = "euler"
    heun = "heun"


HELP = "Predict the 3D trace of an instruction on an image (a trace file `tracegen execute` runs)."


@dataclass(frozen=True)
class PredictRequest:
    """One prediction, with its inputs read and validated.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 metres (NaN unknown), or None for a 2D-only prediction.
        intrinsics: (3, 3) float32 pixels.
        default_intrinsics: true when `intrinsics` is the documented 60 degree default.
        instruction: the task instruction (non-empty).
        out: trace file path; render: overlay PNG path or None.
    """

    image: np.ndarray
    depth: np.ndarray | None
    intrinsics: np.ndarray
    default_intrinsics: bool
    instruction: str
    out: Path
    render: Path | None


@dataclass(frozen=True)
class SamplingOptions:
    """Sampler settings passed to `model.predict.predict_traces` (None: the checkpoint's default)."""

    samples: int = 1
    steps: int | None = None
    sampler: str | None = None
    guidance: float | None = None
    seed: int = 0
    temperature: float = 1.0


def build_request(
    image: Path, instruction: str | None, out: Path, render: Path | None,
    depth: Path | None, depth_units: str, intrinsics: str | None,
) -> PredictRequest:
    """Read and validate one prediction's inputs (raises `PredictInputError` naming the problem)."""
    from tracegen_cli.predict_inputs import check_instruction, parse_intrinsics, read_depth, read_image

    text = check_instruction(instruction)
    rgb = read_image(image)
    height, width = rgb.shape[:2]
    depth_map = read_depth(depth, (height, width), depth_units) if depth is not None else None
    matrix, is_default = parse_intrinsics(intrinsics, width, height)
    _check_out_dir(out)
    if render is not None:
        _check_out_dir(render)
    return PredictRequest(rgb, depth_map, matrix, is_default, text, out, render)


def _check_out_dir(path: Path) -> None:
    from tracegen_cli.predict_inputs import PredictInputError

    if not path.parent.is_dir():
        raise PredictInputError(f"output folder {path.parent} does not exist; create it or pass another --out/--render")


def run_request(model, checkpoint_id: str, request: PredictRequest, options: SamplingOptions, device: str):
    """Predict, then write the trace file (and overlay) atomically.

    Returns:
        (TraceFile written, seconds spent in the model).
    """
    from model.predict import predict_traces
    from store.trace import TraceFile, save_trace_file

    started = time.perf_counter()
    kwargs = {"num_samples": options.samples, "seed": options.seed, "temperature": options.temperature}
    if options.steps is not None:
        kwargs["steps"] = options.steps
    if options.sampler is not None:
        kwargs["sampler"] = options.sampler
    if options.guidance is not None:
        kwargs["guidance"] = options.guidance
    traj, valid = predict_traces(model, request.image, request.depth, request.intrinsics, request.instruction, **kwargs)
    seconds = time.perf_counter() - started
    traj = np.asarray(traj, dtype=np.float32).copy()  # (N, K, 33, 3)
    if request.depth is None:
        traj[..., 2] = np.nan  # 2D-only: no metric depth was given, so z is unknown
    trace = TraceFile(
        traj=traj[0],
        valid=np.asarray(valid, dtype=bool),
        intrinsics=request.intrinsics,
        image_size=request.image.shape[:2],
        instruction=request.instruction,
        checkpoint_id=checkpoint_id,
        samples=traj if traj.shape[0] > 1 else None,
    )
    if request.render is not None:
        from tracegen_cli.render import render_trace_overlay, save_png

        title = f"{request.instruction}  |  ckpt {checkpoint_id[:12]}" + ("" if trace.has_depth else "  |  2D only")
        save_png(request.render, render_trace_overlay(request.image, trace.traj, trace.valid, title=title))
    save_trace_file(request.out, trace)
    return trace, seconds


def _batch_requests(images: Path, table: Path, out: Path, render: Path | None, depth_units: str,
                    intrinsics: str | None) -> list[PredictRequest]:
    from tracegen_cli.predict_inputs import PredictInputError, read_batch

    for folder, flag in ((out, "--out"), (render, "--render")):
        if folder is not None and not folder.is_dir():
            raise PredictInputError(f"{flag} {folder} is not a folder; in batch mode {flag} names an existing folder")
    items = read_batch(images, table)
    stems = [item.image.stem for item in items]
    if len(set(stems)) != len(stems):
        raise PredictInputError(f"{table} lists an image stem twice; each row must name a different image")
    return [
        build_request(item.image, item.instruction, out / f"{item.image.stem}.npz",
                      render / f"{item.image.stem}.png" if render is not None else None,
                      item.depth, depth_units, intrinsics)
        for item in items
    ]


def _describe(request: PredictRequest) -> None:
    height, width = request.image.shape[:2]
    if request.depth is None:
        console.print("[yellow]no depth given: 2D-only prediction[/] (z is NaN in the trace file; pass --depth for 3D)")
    if request.default_intrinsics:
        k = request.intrinsics
        console.print(
            f"default intrinsics (60° horizontal field of view, {width}x{height}): "
            f"fx={k[0, 0]:.1f} fy={k[1, 1]:.1f} cx={k[0, 2]:.1f} cy={k[1, 2]:.1f}; pass --intrinsics fx,fy,cx,cy to override"
        )


def _summary(trace, request: PredictRequest, seconds: float) -> str:
    steps = int(trace.valid.sum()) - 1
    motion = np.linalg.norm(trace.traj[:, steps, :2] - trace.traj[:, 0, :2], axis=-1)  # (K,) pixels
    samples = 1 if trace.samples is None else trace.samples.shape[0]
    where = f" + {request.render}" if request.render is not None else ""
    return (
        f"wrote {request.out}{where}: {samples} sample(s), {steps} steps, "
        f"{'3D' if trace.has_depth else '2D only'}, median/max point motion {np.median(motion):.1f}/{motion.max():.1f} px"
        + (f", {seconds * 1000:.0f} ms" if settings.verbose else "")
    )


def predict(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="Checkpoint directory (pretrain/adapt output).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Trace .npz to write (batch mode: an existing folder).")],
    image: Annotated[Path | None, typer.Option("--image", "-i", help="RGB image (PNG/JPEG).")] = None,
    instruction: Annotated[str | None, typer.Option("--instruction", "-t", help="The task, in words.")] = None,
    depth: Annotated[Path | None, typer.Option(help="Depth aligned with the image: .npz key 'depth' (m) or 16-bit PNG.")] = None,
    depth_units: Annotated[str, typer.Option(help="Units of a 16-bit depth PNG: m or mm.")] = "mm",
    intrinsics: Annotated[str | None, typer.Option(help="fx,fy,cx,cy in pixels (default: 60° horizontal FOV, centred).")] = None,
    render: Annotated[Path | None, typer.Option(help="Overlay PNG to write (batch mode: an existing folder).")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Hypotheses to sample; all are saved.")] = 1,
    steps: Annotated[int | None, typer.Option(min=1, help="Sampler steps (default: the checkpoint's).")] = None,
    sampler: Annotated[Sampler | None, typer.Option(help="ODE sampler (default: the checkpoint's; Euler costs one network call per step, Heun two).")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale (default: the checkpoint's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampling noise.")] = 0,
    temperature: Annotated[float, typer.Option(min=0.0, max=1.0, help="Scale of the sampling noise: 1 samples, lower is smoother, 0 is deterministic.")] = 1.0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option(min=0, help="Torch CPU threads (0: torch's default; 1 is fastest on a busy machine).")] = 0,
    images: Annotated[Path | None, typer.Option(help="Batch mode: a folder of images.")] = None,
    instructions: Annotated[Path | None, typer.Option(help="Batch mode: CSV (image,instruction[,depth]) or JSON.")] = None,
) -> None:
    """Predict the 3D trace of an instruction on an image (a trace file `tracegen execute` runs)."""
    from tracegen_cli.predict_inputs import PredictInputError

    if (image is None) == (images is None):
        raise PredictInputError("pass either --image (one prediction) or --images with --instructions (batch mode)")
    if images is not None:
        if instructions is None or instruction is not None or depth is not None:
            raise PredictInputError("batch mode takes --instructions FILE (with an optional depth column), not --instruction/--depth")
        requests = _batch_requests(images, instructions, out, render, depth_units, intrinsics)
    else:
        requests = [build_request(image, instruction, out, render, depth, depth_units, intrinsics)]
    options = SamplingOptions(samples=samples, steps=steps, sampler=None if sampler is None else sampler.value,
                              guidance=guidance, seed=seed, temperature=temperature)
    if threads:
        import torch

        torch.set_num_threads(threads)
    model, checkpoint_id, load_seconds = _load(checkpoint, device)
    total = 0.0
    for request in requests:
        if not settings.quiet:
            _describe(request)
        trace, seconds = run_request(model, checkpoint_id, request, options, device)
        total += seconds
        console.print(_summary(trace, request, seconds), highlight=False)
    if settings.verbose:
        console.print(
            f"latency: model load {load_seconds * 1000:.0f} ms, prediction {total / len(requests) * 1000:.0f} ms"
            f" per image ({len(requests)} image(s), {samples} sample(s) each)"
        )


def _load(checkpoint: Path, device: str):
    """(model on `device` in eval mode, checkpoint id, seconds to load)."""
    from model.checkpoint import load_checkpoint
    from tracegen_cli.predict_inputs import resolve_device

    started = time.perf_counter()
    model, _config, meta = load_checkpoint(checkpoint, device=resolve_device(device))
    model.eval()
    return model, str(meta.get("checkpoint_id", "")), time.perf_counter() - started


def register(app: typer.Typer) -> None:
    app.command(name="predict", help=HELP)(predict)
