"""Run notebooks top to bottom in quality mode, time them, and publish their reference figures.

    python scripts/run_notebooks.py notebooks/01_content_reconstruction.ipynb ...

Each notebook runs in a fresh Jupyter kernel from ``notebooks/`` (as a reader runs it),
with its figures written under ``$NST_OUTPUT_DIR/figures/<notebook>/``. The wall time
of each run, with the CPU model and the date, is recorded in
``docs/figures/timings.json``, and the figures (PNG/GIF/MP4 with their sidecars) are
copied to ``docs/figures/<notebook>/``, which the notebooks' markdown links to, so a
reader can compare without a 10-minute run.

A figure whose name starts with ``input_`` shows an input image; it is published only
when named with ``--allow-input NAME`` after a person checked that it shows bundled images
only (CC0 / public domain, see data/src/CREDITS.md), never a painting or photo we may not
redistribute. ``--publish-only`` copies the figures of an earlier run without running.

``--readable DIR`` (``make readable``) runs them instead for the executed copies a reader sees on
GitHub: with the bundled images only (``NST_EXTRA_IMAGES`` is removed from the kernel's
environment, so every picture is one we may redistribute), figures into
``data/output/readable/`` (the published figures and ``timings.json`` are left alone), and a
readable copy of each run (``notebook_tools.readable``: JPEG pictures, no runtime noise) into
``DIR`` with the run's times in ``DIR/timings.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import notebook_tools  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import cpu_model  # noqa: E402  (the one copy; imports nothing heavy)

DOCS = ROOT / "docs" / "figures"
PUBLISHED = (".png", ".gif", ".mp4", ".json")
MAX_SIDE = 1600


def run(path: Path, timeout: int, executed: Path) -> float:
    """Execute ``path``; its outputs (printed numbers, tables) are kept in ``executed`` even when a
    cell fails, so the prose can be checked against what the quality run printed."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        executed.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed / path.name)
    seconds = time.perf_counter() - start
    errors = notebook_tools.errors(nb)
    if errors:
        raise SystemExit(f"{path.name}: a cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    return seconds


def publish(stem: str, figures: Path, allowed_inputs: set[str]) -> list[str]:
    """Copy one notebook's quality figures into docs/figures/<stem>/ (replacing the old set).

    PNG figures are published as JPEG (long side at most MAX_SIDE px) to keep the
    repository small; GIF/MP4 animations and sidecars are copied as they are.
    """
    from PIL import Image

    source = figures / stem
    target = DOCS / stem
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    copied = []
    for file in sorted(source.glob("*")) if source.is_dir() else []:
        if not file.is_file() or file.suffix not in PUBLISHED:
            continue
        if file.name.startswith("input_") and file.stem not in allowed_inputs:
            continue
        if file.suffix == ".png":
            with Image.open(file) as im:
                im = im.convert("RGB")
                im.thumbnail((MAX_SIDE, MAX_SIDE))
                im.save(target / f"{file.stem}.jpg", quality=88, optimize=True)
            copied.append(f"{file.stem}.jpg")
        else:
            shutil.copy2(file, target / file.name)
            copied.append(file.name)
    return copied


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def run_readable(paths: list[Path], target: Path, timeout: int) -> None:
    """Quality runs with bundled images only, each written as a readable copy into ``target``."""
    os.environ.pop("NST_EXTRA_IMAGES", None)  # the kernel inherits this environment
    output = ROOT / "data" / "output" / "readable"
    os.environ["NST_OUTPUT_DIR"] = str(output)
    target.mkdir(parents=True, exist_ok=True)
    timings_file = target / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    shown = {str(ROOT): ".", str(Path.home()): "~"}
    for path in paths:
        print(f"{path.name}: running in quality mode with bundled images only ...", flush=True)
        load = list(os.getloadavg())
        seconds = run(path, timeout, output / "executed")
        info = {"wall_s": round(seconds, 1), "cpu": cpu_model(), "cores": os.cpu_count(),
                "date": time.strftime("%Y-%m-%d"), "extra_images": False, "quick": False,
                "commit": _commit(), "load_average_at_start": load}  # fmt: skip
        executed = json.loads((output / "executed" / path.name).read_text(encoding="utf-8"))
        copy = notebook_tools.readable(executed, path.name, info, shown)
        (target / path.name).write_text(notebook_tools.dumps(copy), encoding="utf-8")
        timings[path.stem] = info
        timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
        size = (target / path.name).stat().st_size / 1e6
        print(f"{path.name}: {seconds / 60:.1f} min; readable copy {size:.1f} MB", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=3600, help="per cell, seconds")
    parser.add_argument("--no-publish", action="store_true", help="time only, copy no figures")
    parser.add_argument("--publish-only", action="store_true", help="copy an earlier run's figures")
    parser.add_argument("--allow-input", action="append", default=[], help="an input_ figure to publish")
    parser.add_argument("--readable", type=Path, metavar="DIR", help="write executed copies for reading")
    args = parser.parse_args(argv)
    os.environ.pop("NST_QUICK", None)
    if args.readable:
        run_readable([p.resolve() for p in args.notebooks], args.readable, args.timeout)
        return 0
    figures = Path(os.environ.get("NST_OUTPUT_DIR", ROOT / "data" / "output")) / "figures"
    timings_file = DOCS / "timings.json"
    DOCS.mkdir(parents=True, exist_ok=True)
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    for path in args.notebooks:
        path = path.resolve()
        if args.publish_only:
            copied = publish(path.stem, figures, set(args.allow_input))
            print(f"{path.name}: published {len(copied)} files to docs/figures/{path.stem}/")
            continue
        print(f"{path.name}: running in quality mode ...", flush=True)
        seconds = run(path, args.timeout, figures.parent / "executed")
        timings[path.stem] = {
            "wall_s": round(seconds, 1),
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
            "extra_images": bool(os.environ.get("NST_EXTRA_IMAGES")),
        }
        print(f"{path.name}: {seconds / 60:.1f} min", flush=True)
        if not args.no_publish:
            copied = publish(path.stem, figures, set(args.allow_input))
            print(f"  published {len(copied)} files to docs/figures/{path.stem}/")
        timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
