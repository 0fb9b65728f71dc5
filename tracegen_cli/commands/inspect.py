"""`tracegen inspect`: look into a trace store: totals, one video, a rendered sample, verify,
and TraceForge export/import.

    tracegen inspect STORE                          table of videos + totals
    tracegen inspect STORE KEY [--render out.png]   one video (prefix like git), its samples' motion
    tracegen inspect STORE --verify [--cleanup]     read every chunk; exit 1 on problems
    tracegen inspect STORE --export traceforge DIR  write TraceGen's per-episode layout
    tracegen inspect STORE --import-from traceforge DIR
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console

HELP = "Show what a trace store holds; render, verify, export or import it."
FORMATS = ("traceforge",)


def _human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def _check_format(option: str, value: tuple[str, Path] | None) -> Path | None:
    if value is None:
        return None
    fmt, folder = value
    if fmt not in FORMATS:
        raise typer.BadParameter(f"format '{fmt}' is not supported; use one of: {', '.join(FORMATS)}", param_hint=option)
    return Path(folder)


def _print_store(summary) -> None:
    from rich.table import Table

    table = Table(title=f"trace store {summary.location}", title_justify="left")
    for column in ("key", "samples", "embodiment", "depth", "configs", "instruction"):
        table.add_column(column, justify="right" if column == "samples" else "left", no_wrap=column == "key")
    for row in summary.rows:
        table.add_row(row["key"][:12], str(row["samples"]), row["embodiment"], row["depth_source"], str(len(row["configs"])), row["instruction"])
    console.print(table)
    ratio = "n/a" if summary.compression_ratio != summary.compression_ratio else f"{summary.compression_ratio:.2f}x"
    counts = lambda mapping: ", ".join(f"{name} {n}" for name, n in sorted(mapping.items())) or "none"  # noqa: E731
    console.print(
        f"videos {summary.videos} · samples {summary.samples} · forge configs {len(summary.forge_configs)} · "
        f"size on disk {_human_bytes(summary.disk_bytes)} · compression {ratio} · images {summary.image_codec}\n"
        f"embodiments: {counts(summary.embodiments)}\ndepth sources: {counts(summary.depth_sources)}",
        highlight=False,
    )
    if summary.staging:
        console.print(f"[yellow]{summary.staging} interrupted write(s) left staging folders; run with --verify --cleanup[/]")


def _print_video(details: dict) -> None:
    from rich.table import Table

    attrs = details["attrs"]
    console.print(f"[bold]video {details['key']}[/]", highlight=False)
    for name in sorted(attrs):
        if name != "instructions":
            console.print(f"  {name}: {attrs[name]}", highlight=False)
    for text in attrs.get("instructions", []):
        console.print(f"  instruction: {text}", highlight=False)
    for cfg, forge in sorted(details["forge"].items()):
        marker = "*" if cfg == details["config"] else " "
        console.print(f" {marker}forge {cfg}: {forge.get('num_samples')} samples, depth {forge.get('depth_source')}, "
                      f"camera {forge.get('camera_motion')}, created {forge.get('created')}", highlight=False)
    table = Table(title=f"samples of config {details['config']} (image {details['image_size'][0]}x{details['image_size'][1]})", title_justify="left")
    columns = ("sample", "query_frame", "valid_steps", "visible", "mean_disp_px", "max_disp_px", "path_px", "z_min", "z_max")
    headers = ("#", "frame", "steps", "visible", "disp px", "max px", "path px", "z min m", "z max m")
    for header in headers:
        table.add_column(header, justify="right")
    for row in details["samples"]:
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    console.print(table)


def _print_verify(report) -> None:
    from rich.table import Table

    if report.problems:
        table = Table(title="problems", title_justify="left")
        for column in ("kind", "path", "message"):
            table.add_column(column)
        for problem in report.problems:
            table.add_row(problem.kind, problem.path, problem.message)
        console.print(table)
    status = "[green]ok[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"
    console.print(f"verify: {status} · {report.videos} videos · {report.groups} forge groups · {report.chunks} chunks read"
                  + (f" · removed {len(report.removed)} staging folder(s)" if report.removed else ""))


def inspect(
    store: Annotated[str, typer.Argument(help="Store folder or fsspec URL (memory://, s3://, file://).")],
    key: Annotated[str | None, typer.Argument(help="Video key or unique prefix (like a git hash).")] = None,
    render: Annotated[Path | None, typer.Option(help="Write a PNG of a sample's traces (needs KEY).")] = None,
    sample: Annotated[int, typer.Option(help="Sample index to render.")] = 0,
    config: Annotated[str | None, typer.Option(help="Forge config hash (default: the video's latest).")] = None,
    export: Annotated[tuple[str, Path] | None, typer.Option(help="FORMAT DIR: export, e.g. `traceforge out/`.")] = None,
    import_from: Annotated[tuple[str, Path] | None, typer.Option("--import-from", help="FORMAT DIR: import into STORE (created if new).")] = None,
    image_codec: Annotated[str, typer.Option(help="Image codec of a store --import-from creates: blosc, png, webp-lossless, webp-95, jpeg-95.")] = "blosc",
    verify: Annotated[bool, typer.Option("--verify", help="Read every chunk and check the schema; exit 1 on problems.")] = False,
    cleanup: Annotated[bool, typer.Option("--cleanup", help="With --verify: remove staging folders older than an hour.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
) -> None:
    """Show what a trace store holds; render, verify, export or import it."""
    from store.trace_store import TraceStore

    export_dir, import_dir = _check_format("--export", export), _check_format("--import-from", import_from)
    if render is not None and key is None:
        raise typer.BadParameter("--render needs a video KEY; list keys with `tracegen inspect STORE`", param_hint="--render")
    output: dict = {}
    if import_dir is not None:
        _import(store, import_dir, image_codec, output, as_json)
    opened = TraceStore.open(store, mode="a" if cleanup else "r")
    failed = _verify(opened, cleanup, output, as_json) if verify else False
    if export_dir is not None:
        _export(opened, export_dir, key, output, as_json)
    if key is not None:
        _show_video(opened, key, config, render, sample, output, as_json)
    elif not (verify or export_dir) or as_json:  # after an import, show what the store now holds
        from store.summary import summarize_store

        summary = summarize_store(opened)
        output["store"] = summary.to_dict()
        if not as_json:
            _print_store(summary)
    if as_json:
        typer.echo(json.dumps(output, indent=2, default=str))
    if failed:
        raise typer.Exit(1)


def _import(store: str, folder: Path, image_codec: str, output: dict, as_json: bool) -> None:
    from store.interop import import_traceforge
    from store.trace_store import TraceStore

    output["imported"] = import_traceforge(folder, TraceStore.create(store, image_codec=image_codec))
    if not as_json:
        console.print(f"imported {len(output['imported'])} episode(s) from {folder} into {store}")


def _verify(opened, cleanup: bool, output: dict, as_json: bool) -> bool:
    """Run verify; returns true when problems were found."""
    from store.verify import verify as verify_store

    report = verify_store(opened, cleanup=cleanup)
    output["verify"] = report.to_dict()
    if not as_json:
        _print_verify(report)
    return not report.ok


def _export(opened, folder: Path, key: str | None, output: dict, as_json: bool) -> None:
    from store.interop import export_traceforge

    output["exported"] = [str(path) for path in export_traceforge(opened, folder, [key] if key else None)]
    if not as_json:
        console.print(f"exported {len(output['exported'])} episode(s) to {folder}")


def _show_video(opened, key: str, config: str | None, render: Path | None, sample: int, output: dict, as_json: bool) -> None:
    from store.summary import video_details

    details = video_details(opened, key, config)
    output["video"] = details
    if render is not None:
        output["render"] = str(_render_sample(opened.read_samples(details["key"], details["config"]), sample, render, key))
    if not as_json:
        _print_video(details)
        if render is not None:
            console.print(f"rendered sample {sample} to {render}")


def _render_sample(samples, index: int, out_path: Path, key: str) -> Path:
    """Draw sample `index`'s traces on its reference image (time and z panels) into a PNG."""
    from store.errors import StoreError
    from tracegen_cli.render import render_trace_overlay, save_png

    if not 0 <= index < samples.num_samples:
        raise StoreError(f"sample {index} does not exist; this video has samples 0..{samples.num_samples - 1}")
    overlay = render_trace_overlay(
        samples.image[index],
        samples.traces[index],
        samples.valid[index],
        samples.visible[index],
        title=f"{key[:12]} sample {index} (query frame {int(samples.query_frame[index])})",
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    return save_png(out_path, overlay)


def register(app: typer.Typer) -> None:
    app.command(name="inspect", help=HELP)(inspect)
