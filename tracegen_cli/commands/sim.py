"""`tracegen sim`: the simulated tabletop world (MuJoCo).

`tracegen sim demos` films scripted demonstrations of a task by an embodiment and writes, per episode,
`<name>.mp4`, `<name>.depth.npz`, `<name>.json` and `<name>.gt.npz` (what `tracegen forge` reads,
plus exact ground-truth traces).

`tracegen sim arm` serves a seeded layout's simulated SO-101 on a pseudo-terminal that speaks the
Feetech bytes, writes the arm camera's observation and the calibration files `tracegen predict` and
`tracegen execute` read, and reports the task's success when stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console, err_console, progress, settings

TASK_NAMES = ("place_block", "ball_in_bin", "open_drawer", "close_drawer", "sweep")  # robot.sim.tasks.TASKS


def parse_size(text: str) -> tuple[int, int]:
    """`"320x240"` -> (320, 240)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"size {text!r} is not WIDTHxHEIGHT, e.g. 320x240") from None
    return width, height


def demos(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the episodes into.")],
    task: Annotated[str, typer.Option(help=f"Task: {', '.join(TASK_NAMES)}.")] = "place_block",
    embodiment: Annotated[str, typer.Option(help="so101 (target robot), other_robot, or human.")] = "so101",
    episodes: Annotated[int, typer.Option(help="Number of episodes.")] = 1,
    camera: Annotated[str, typer.Option(help="static (fixed, random pose), handheld (moving, shaking) or calibrated (the SO-101 arm's camera).")] = "static",
    depth: Annotated[bool, typer.Option("--depth/--no-depth", help="Write <name>.depth.npz.")] = True,
    seed: Annotated[int, typer.Option(help="Run seed; the same seed writes the same bytes.")] = 0,
    size: Annotated[str, typer.Option(help="Image size WIDTHxHEIGHT (even numbers).")] = "320x240",
    fps: Annotated[float, typer.Option(help="Video frame rate.")] = 15.0,
    first: Annotated[int, typer.Option(help="Index of the first episode (to extend a run).")] = 0,
    start: Annotated[str, typer.Option(help="Where an arm starts: park (folded away; the video opens with the move to the ready pose) or home (at the ready pose, where trials start).")] = "park",
    workers: Annotated[int, typer.Option(min=1, help="Episodes filmed in parallel (processes); the files do not depend on it.")] = 1,
) -> None:
    """Film scripted demonstrations with video, depth, camera poses and ground-truth traces."""
    from robot.sim.episode import EpisodeConfig
    from robot.sim.writer import generate_demos

    width, height = parse_size(size)
    config = EpisodeConfig(task=task, embodiment=embodiment, camera=camera, seed=seed, index=first,
                           width=width, height=height, fps=fps, depth=depth, start=start)
    config.validate()
    with progress() as bar:
        job = bar.add_task(f"{task} / {embodiment} / {camera}", total=episodes)
        summaries = generate_demos(config, episodes, out, on_episode=lambda _: bar.advance(job), workers=workers)
    successes = sum(s["success"] for s in summaries)
    frames = sum(s["frames"] for s in summaries)
    if settings.verbose:
        for s in summaries:
            console.print(f"  {s['name']}: {s['frames']} frames, success={s['success']}, {s['seconds']} s")
    console.print(f"wrote {len(summaries)} episodes ({frames} frames) to {out}; "
                  f"demonstrator success {successes}/{len(summaries)}")


def arm(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the observation and calibration files.")],
    task: Annotated[str, typer.Option(help=f"Task: {', '.join(TASK_NAMES)}.")] = "place_block",
    seed: Annotated[int, typer.Option(help="Layout seed.")] = 0,
    size: Annotated[str, typer.Option(help="Camera image size WIDTHxHEIGHT.")] = "320x240",
    duration: Annotated[float, typer.Option(min=0.0, help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
) -> None:
    """Serve the simulated SO-101 on a pseudo-terminal (Feetech bytes) for `tracegen execute`; report success at the end."""
    import json
    import sys

    from robot.emulator import start_emulator
    from robot.sim.arm_world import SimArmWorld, save_observation
    from robot.sim.errors import SimConfigError
    from robot.sim.tasks import TASKS

    if task not in TASKS:
        raise SimConfigError(f"unknown task {task!r}; pick one of {', '.join(TASKS)}")
    width, height = parse_size(size)
    world = SimArmWorld(task, seed=seed, width=width, height=height)
    try:
        files = save_observation(world.observe(), out)
        calibration = world.write_calibration(out / "calibration.json")
        camera = world.write_camera_to_base(out / "camera_to_base.json")
        with start_emulator("so101", backend=world.backend) as handle:
            console.print(handle.url, highlight=False, soft_wrap=True)
            if not settings.quiet:
                err_console.print(
                    f"simulated so101 ({task}, seed {seed}) on {handle.url}; instruction: {world.instruction!r}\n"
                    f"  tracegen predict --image {files['image']} --depth {files['depth']} --intrinsics "
                    f"$(cat {files['intrinsics']}) --instruction \"$(cat {files['instruction']})\" --out trace.npz ...\n"
                    f"  tracegen execute trace.npz --robot so101 --port {handle.url} --calibration {calibration} "
                    f"--camera-to-base {camera}\nCtrl-C stops and checks the task", highlight=False, soft_wrap=True)
            sys.stdout.flush()
            from tracegen_cli.serving import serve_until_interrupted

            serve_until_interrupted(duration)
        world.settle(0.5)
        result = {"task": task, "seed": seed, "success": world.success(), "tool_in_base": world.tool_in_base().tolist()}
        (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
        console.print(f"task {task}: {'[green]success[/]' if result['success'] else '[red]not done[/]'}")
    finally:
        world.close()


def register(app: typer.Typer) -> None:
    """Add the `sim` sub-app."""
    sim = typer.Typer(help="The simulated tabletop world (MuJoCo): demo videos with ground truth.", no_args_is_help=True)
    sim.command(name="demos")(demos)
    sim.command(name="arm")(arm)
    app.add_typer(sim, name="sim")
