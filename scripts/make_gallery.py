"""Regenerate the curated result gallery in ``docs/gallery/`` with nst_tf itself.

    NST_EXTRA_IMAGES=/folder/with/paintings python scripts/make_gallery.py          # everything
    python scripts/make_gallery.py --only tubingen_starry_night weight_sweep        # some entries
    python scripts/make_gallery.py --readme                                          # README only
    python scripts/make_gallery.py --list

Each entry in ``ENTRIES`` is one image: a single transfer (``Transfer``), a row
of results where one setting varies (``Sweep``) or a content x style grid
(``Grid``). Every image gets a JSON sidecar with the settings that made it
(``config``, seed, inputs, VGG19 weights, versions, timings), and
``docs/gallery/README.md`` is rebuilt from the sidecars. Adding a gallery
image is one line in ``ENTRIES``.

The paintings are not part of the repository: they are resolved by name at
run time (``NST_EXTRA_IMAGES`` folders, the download cache, or a download from
Wikimedia Commons, see ``nst_tf.data``) and never copied here. Only the
generated images are written. A full run takes about 30-40 minutes on a 2-core
CPU; identical runs shared between entries are computed once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "gallery"
JPEG_QUALITY = 90
#: Largest gallery file (bytes): the JPEG quality is lowered step by step to stay below it.
MAX_BYTES = 240_000
#: Settings for the single large images (the API's defaults otherwise: L-BFGS, 20 steps at half
#: size, then 10 at full size: about 33 s each on 2 cores). Style weight 10, the default when the
#: gallery was made (and notebook 03's); the package's default is 3 since issue #16.
LARGE = dict(size=512, style_weight=10.0)
#: Settings for the cells of sweeps and grids: 256 px, 60 L-BFGS steps, no pyramid (~30 s each).
SMALL = dict(size=256, steps=60, pyramid=(), style_weight=10.0)


@dataclass
class Transfer:
    """One ``transfer_style`` run saved as ``<name>.jpg``; ``style`` may be a list (blending)."""

    name: str
    content: str
    style: str | list[str]
    title: str
    settings: dict = field(default_factory=lambda: dict(LARGE))
    #: spatial control: one (top, bottom) band of rows per style, as fractions of the content's height
    bands: tuple = ()


@dataclass
class Sweep:
    """A row of runs on one content/style pair where ``param`` takes each of ``values``."""

    name: str
    content: str
    style: str
    param: str
    values: list
    title: str
    settings: dict = field(default_factory=lambda: dict(SMALL))


@dataclass
class Grid:
    """Every content image in the style of every style image, labelled with the images' names.

    Only results are drawn: the inputs (paintings, photos) are named, never shown, so the
    committed figure contains no copy of an image the project may not redistribute."""

    name: str
    contents: list[str]
    styles: list[str]
    title: str
    settings: dict = field(default_factory=lambda: dict(SMALL))


ENTRIES = [
    Transfer("tubingen_starry_night", "tubingen", "starry_night",
             "Tübingen in the style of The Starry Night: the defaults"),
    Transfer("chelsea_woman_with_hat", "chelsea", "woman_with_hat",
             "Chelsea the cat in the style of Matisse's Woman with a Hat"),
    Transfer("astronaut_kandinsky", "astronaut", "kandinsky_composition_vii",
             "Astronaut in the style of Kandinsky's Composition VII"),
    Transfer("rocket_great_wave", "rocket", "great_wave",
             "Rocket launch in the style of The Great Wave off Kanagawa"),
    Transfer("coffee_night_cafe", "coffee", "night_cafe",
             "Coffee in the style of Van Gogh's The Night Café"),
    Sweep("weight_sweep", "tubingen", "starry_night", "style_weight", [1.0, 10.0, 100.0, 1000.0],
          "Style weight from 1 to 1000 (content weight 1): from photo to painting"),
    Grid("grid_3x3", ["tubingen", "chelsea", "astronaut"], ["starry_night", "great_wave", "picabia_edtaonisl"],
         "Three content images x three style images, default settings at 256 px"),
    # Notebook 04: colour preservation and style blending
    Transfer("tubingen_starry_night_luminance", "tubingen", "starry_night",
             "Luminance-only transfer: Tübingen's own colours, The Starry Night's brushwork",
             dict(LARGE, preserve_color="luminance")),
    Transfer("tubingen_starry_night_histogram", "tubingen", "starry_night",
             "Colour histogram matching: The Starry Night recoloured to Tübingen's palette, then transferred",
             dict(LARGE, preserve_color="histogram")),
    Transfer("tubingen_starry_night_kandinsky", "tubingen", ["starry_night", "kandinsky_composition_vii"],
             "Two styles blended 50/50: The Starry Night and Kandinsky's Composition VII",
             dict(LARGE, style_blend=(0.5, 0.5))),
    # Notebook 04: spatial control (guided Gram matrices) and styles mixed by scale
    Transfer("tubingen_masks_starry_night_kandinsky", "tubingen", ["starry_night", "kandinsky_composition_vii"],
             "Masks (guided Gram matrices): The Starry Night on the top 40 %, Kandinsky's Composition VII below",
             bands=((0.0, 0.4), (0.4, 1.0))),
    Transfer("tubingen_scale_mix_starry_night_kandinsky", "tubingen", ["starry_night", "kandinsky_composition_vii"],
             "Mixed by scale: The Starry Night's coarse structure, Kandinsky's fine texture",
             dict(LARGE, style_mix="scale")),
]  # fmt: skip


# ----------------------------------------------------------------------------- running
_CACHE: dict = {}


def _run(content, style, settings, bands=()):
    """``transfer_style`` with ``settings``; identical runs (a sweep cell that is also a grid cell) once."""
    from nst_tf import Config, transfer_style

    key = (content, repr(style), Config(**settings).to_json(), repr(bands))  # equal settings, however spelled
    if key not in _CACHE:
        masks = band_masks(content, bands) if bands else None
        _CACHE[key] = transfer_style(content, style, style_masks=masks, **settings)
    return _CACHE[key]


def band_masks(content, bands):
    """One mask per (top, bottom) band: white on those rows of the content image, black elsewhere."""
    import numpy as np

    from nst_tf.data import load

    h, w = load(content).shape[:2]
    masks = []
    for top, bottom in bands:
        mask = np.zeros((h, w), np.float32)
        mask[round(top * h) : round(bottom * h)] = 1.0
        masks.append(mask)
    return masks


def _portable(meta: dict) -> dict:
    """Drop machine-specific absolute paths from run metadata (names and hashes stay)."""
    inputs = meta.get("inputs", {})
    for item in [inputs.get("content", {}), *inputs.get("styles", [])]:
        item.pop("path", None)
    if isinstance(meta.get("weights"), dict) and meta["weights"].get("path"):
        meta["weights"]["path"] = Path(meta["weights"]["path"]).name
    return meta


def _label(style) -> str:
    return " + ".join(style) if isinstance(style, list) else style


def _save_jpeg(image, path: Path) -> Path:
    from nst_tf.images import save_image

    for quality in (JPEG_QUALITY, 85, 80, 75):  # stay under MAX_BYTES (tests check it)
        save_image(image, path, quality=quality)
        if path.stat().st_size <= MAX_BYTES:
            break
    return path


def _save_figure_jpeg(fig, path: Path, width_px: int) -> Path:
    """A matplotlib figure as a JPEG about ``width_px`` wide (written atomically), under MAX_BYTES."""
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp.jpg")
    dpi = width_px / fig.get_size_inches()[0]
    for quality in (JPEG_QUALITY, 85, 80, 75):
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", pil_kwargs={"quality": quality})
        if tmp.stat().st_size <= MAX_BYTES:
            break
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _refuse_copies(entry, runs) -> None:
    """A result that never left its content image (content loss 0 from ``init="content"``) is a
    copy of the photo: refuse to commit it (the old weight sweep's style_weight 0.1 cell was one)."""
    for run in runs:
        if run.final_losses.get("content", 1.0) <= 1e-9 and getattr(run, "config", None) is not None:
            if getattr(run.config, "init", None) == "content":
                raise SystemExit(
                    f"{entry.name}: a cell ended with content loss 0, i.e. an unchanged copy of its content "
                    "image, which may not be redistributed: raise its style weight or drop the cell"
                )


def grid_figure(results, contents, styles, size: float = 2.4):
    """Results only, one row per content and one column per style, with text labels (names)."""
    from nst_tf.plotting import show_images

    titles = [f"style: {s}" for s in styles] + [""] * (len(results) - len(styles))
    labels = [f"content: {c}" for c in contents]
    return show_images(results, titles, ncols=len(styles), size=size, row_labels=labels)


def _gallery_meta(entry, kind, **extra) -> dict:
    return {"name": entry.name, "title": entry.title, "kind": kind, "cpu_count": os.cpu_count(), **extra}


def make(entry, out: Path) -> Path:
    """Compute ``entry`` and write ``<out>/<name>.jpg`` plus ``<name>.json``; return the image path."""
    from nst_tf.transfer import versions, write_json

    start = time.perf_counter()
    path = out / f"{entry.name}.jpg"
    if isinstance(entry, Transfer):
        result = _run(entry.content, entry.style, entry.settings, entry.bands)
        _refuse_copies(entry, [result])
        _save_jpeg(result.image, path)
        meta = _portable(result.metadata())
        extra = {"bands": [list(b) for b in entry.bands]} if entry.bands else {}
        meta["gallery"] = _gallery_meta(
            entry,
            "transfer",
            content=entry.content,
            style=_label(entry.style),
            settings=entry.settings,
            **extra,
        )
    else:
        from nst_tf.plotting import show_images

        if isinstance(entry, Sweep):
            runs = [
                _run(entry.content, entry.style, {**entry.settings, entry.param: v}) for v in entry.values
            ]
            fig = show_images(
                [r.image for r in runs], [f"{entry.param} {v:g}" for v in entry.values], size=2.6
            )
            width = 220 * len(runs)
            cells = [{"content": entry.content, "style": entry.style, entry.param: v} for v in entry.values]
            extra = dict(
                content=entry.content,
                style=entry.style,
                settings=entry.settings,
                sweep={entry.param: entry.values},
            )
        else:
            pairs = [(c, s) for c in entry.contents for s in entry.styles]
            runs = [_run(c, s, entry.settings) for c, s in pairs]
            fig = grid_figure([r.image for r in runs], entry.contents, entry.styles)
            width = 200 * len(entry.styles)
            cells = [{"content": c, "style": s} for c, s in pairs]
            extra = dict(
                content=", ".join(entry.contents), style=", ".join(entry.styles), settings=entry.settings
            )
        _refuse_copies(entry, runs)
        _save_figure_jpeg(fig, path, width)
        meta = _portable(runs[0].metadata())
        for cell, run in zip(cells, runs):
            cell.update(final_losses=run.final_losses, seconds=run.timings["total_s"])
        meta["cells"] = cells
        meta["timings"] = {
            "total_s": round(sum(r.timings["total_s"] for r in runs), 1),
            "runs": len(runs),
            "note": "sum over the cells' runs",
        }
        meta["gallery"] = _gallery_meta(entry, "sweep" if isinstance(entry, Sweep) else "grid", **extra)
    meta["versions"] = versions()
    meta["gallery"]["wall_s"] = round(time.perf_counter() - start, 1)
    write_json(meta, path.with_suffix(".json"))
    return path


# ----------------------------------------------------------------------------- README
def _settings_text(meta: dict) -> str:
    config, gallery = meta["config"], meta["gallery"]
    parts = [f"{config['size']} px", f"{config['optimizer']}", f"{config['steps']} steps"]
    if config.get("pyramid"):
        parts[-1] += " after " + ", ".join(f"{n} at {s:g}x" for s, n in config["pyramid"])
    for key in ("content_weight", "style_weight", "tv_weight"):
        parts.append(f"{key} {config[key]:g}")
    for key in ("init", "preserve_color"):
        if key in config and config[key] not in ("content", "none"):
            parts.append(f"{key} {config[key]}")
    if config.get("style_blend"):
        parts.append("style_blend " + "/".join(f"{w:g}" for w in config["style_blend"]))
    if config.get("style_mix", "blend") != "blend":
        parts.append(f"style_mix {config['style_mix']} (coarse: first style, fine: second)")
    if gallery.get("bands"):
        parts.append("style masks: rows " + ", ".join(f"{t:.0%}-{b:.0%}" for t, b in gallery["bands"]))
    if "sweep" in gallery:
        ((param, values),) = gallery["sweep"].items()
        parts = [p for p in parts if not p.startswith(param)]
        parts.append(f"{param} " + ", ".join(f"{v:g}" for v in values))
    return ", ".join(parts)


def write_readme(out: Path, entries=ENTRIES) -> Path:
    """Rebuild ``<out>/README.md`` from the sidecars of ``entries`` that exist."""
    import json

    rows = []
    for entry in entries:
        sidecar = out / f"{entry.name}.json"
        if not sidecar.exists():
            continue
        meta = json.loads(sidecar.read_text())
        g = meta["gallery"]
        cpus = g.get("cpu_count")
        seconds = meta["timings"]["total_s"]
        time_text = f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
        if g["kind"] != "transfer":
            time_text += f" ({meta['timings']['runs']} runs)"
        rows.append(
            f"| [![{g['title']}]({entry.name}.jpg)]({entry.name}.jpg)<br>{g['title']} "
            f"| {g['content']} | {g['style']} | {_settings_text(meta)} "
            f"| {time_text}{f', {cpus} CPUs' if cpus else ''} |"
        )
    text = "\n".join(
        [
            "# Gallery",
            "",
            "Results made with this repository's own code by `scripts/make_gallery.py` (regenerate them with",
            "`NST_EXTRA_IMAGES=/folder/with/paintings python scripts/make_gallery.py`). Each image has a JSON",
            "sidecar with everything needed to remake it: the full `nst_tf.Config`, the seed, the inputs' names",
            "and hashes, the VGG19 weights and the library versions. Times are wall-clock on a shared CPU",
            "machine and only indicative.",
            "",
            "| result | content | style | settings | time |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "## Credits",
            "",
            "* Content images `chelsea`, `astronaut`, `coffee`, `rocket`: the public-domain / CC0 sample images",
            "  of scikit-image (see `data/src/CREDITS.md`).",
            "* `tubingen`: *Neckarfront in Tübingen* by Andreas Praefcke, CC BY 3.0, via Wikimedia Commons.",
            "  The images derived from it here are under the same licence.",
            "* Style images (not in this repository; resolved by name at run time): Vincent van Gogh, *The",
            "  Starry Night* (1889) and *The Night Café* (1888); Katsushika Hokusai, *The Great Wave off",
            "  Kanagawa* (c. 1831); Wassily Kandinsky, *Composition VII* (1913); Henri Matisse, *Woman with a",
            "  Hat* (1905); Francis Picabia, *Edtaonisl* (1913). All public domain by age.",
            "",
        ]
    )
    path = out / "README.md"
    path.write_text(text)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="make only these entries")
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"output folder (default {OUT.relative_to(ROOT)})"
    )
    parser.add_argument("--readme", action="store_true", help="only rebuild README.md from the sidecars")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    args = parser.parse_args(argv)
    names = [e.name for e in ENTRIES]
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        print(
            f"error: unknown entr{'y' if len(unknown) == 1 else 'ies'} {unknown}: choose from {names}",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.readme:
        from nst_tf.errors import NSTError
        from nst_tf.plotting import use_style

        use_style()

        for entry in ENTRIES:
            if args.only and entry.name not in args.only:
                continue
            try:
                path = make(entry, args.out)
            except NSTError as err:
                print(f"error: {entry.name}: {err}", file=sys.stderr)
                return 2
            print(
                f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
                f"({path.stat().st_size // 1024} KB)",
                flush=True,
            )
    print(f"wrote {write_readme(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
