"""Save figures for blogs and papers, and export them as a page that publishes as is.

``save_figure(fig, "reconstruction_grid", notebook="01_content_reconstruction",
caption=...)`` writes ``data/output/figures/<notebook>/<name>.png`` (and SVG/PDF
on request) plus ``<name>.json``, the sidecar: caption, alt text, the order in
which the notebook saved it, and whether it was made in quick mode.
``save_animation(frames, "optimisation", notebook=..., caption=...)`` does the
same for GIF/MP4 animations.

``python -m nst_tf figures`` (or ``export_markdown``) writes one page listing
every figure in notebook order (notebook number, then the order saved), either
as plain Markdown (``--format markdown``, the default) or as Hugo ``{{< figure >}}``
shortcodes (``--format hugo``): one form per page, so each figure renders once.
MP4s become an HTML ``<video>`` element (Hugo: needs ``markup.goldmark.renderer.unsafe``).

Quick mode (``NST_QUICK=1``) figures are marked ``"quick": true``; a quick-mode
save never replaces a quality figure (it goes to ``<notebook>/quick/`` instead,
with one line saying so), and the export leaves quick figures out unless asked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sys
import urllib.parse
from pathlib import Path

from nst_tf.errors import ConfigError
from nst_tf.files import atomic_write, write_text

IMAGE_FORMATS = ("png", "svg", "pdf", "jpg")
ANIMATION_FORMATS = ("gif", "mp4")
#: The export formats: plain Markdown or Hugo shortcodes.
EXPORT_FORMATS = ("markdown", "hugo")
#: Order within a notebook: one counter per notebook for this process (a notebook run).
_ORDER: dict[str, itertools.count] = {}


def figures_dir() -> Path:
    from nst_tf.files import output_dir

    return output_dir() / "figures"


def _quick(quick: bool | None) -> bool:
    if quick is not None:
        return bool(quick)
    from nst_tf.notebook import quick_mode

    return quick_mode()


def _folder(root, notebook: str, name: str, quick: bool) -> Path:
    """Where to write: ``<root>/<notebook>/``, or its ``quick/`` subfolder when a quick-mode
    save would replace a quality figure of the same name."""
    folder = Path(root or figures_dir()) / notebook
    sidecar = folder / f"{name}.json"
    if quick and sidecar.is_file():
        try:
            existing_quick = json.loads(sidecar.read_text()).get("quick", False)
        except (OSError, json.JSONDecodeError):
            existing_quick = True  # unreadable: nothing worth protecting
        if not existing_quick:
            target = folder / "quick"
            print(f"quick mode: kept the quality figure {sidecar.with_suffix('')}.*, wrote to {target}/")
            folder = target
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_sidecar(folder: Path, name: str, meta: dict) -> None:
    write_text(folder / f"{name}.json", json.dumps(meta, indent=2))


def _meta(name, notebook, caption, alt, files, quick, kind, **extra) -> dict:
    return {
        "name": name,
        "notebook": notebook,
        "kind": kind,
        "caption": caption,
        "alt": alt,
        "files": files,
        "order": next(_ORDER.setdefault(notebook, itertools.count())),
        "quick": quick,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        **extra,
    }


def save_figure(
    fig,
    name: str,
    *,
    notebook: str,
    caption: str = "",
    alt: str = "",
    dpi: int = 150,
    formats=("png",),
    root=None,
    quick: bool | None = None,
) -> Path:
    """Save ``fig`` as ``<root>/<notebook>/<name>.<fmt>`` for each format, plus a sidecar.

    ``caption`` is shown under the figure; ``alt`` describes the picture for readers
    who cannot see it (default: the caption). ``quick`` (default: ``NST_QUICK``) is
    recorded; a quick save never replaces a quality one. Returns the first format's
    path. Files are written to a temporary name and then renamed (never half written).
    """
    for fmt in formats:
        if fmt not in IMAGE_FORMATS:
            raise ConfigError(f"unsupported figure format {fmt!r}: use png, svg, pdf or jpg")
    quick = _quick(quick)
    folder = _folder(root, notebook, name, quick)
    written = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        atomic_write(path, lambda fh, fmt=fmt: fig.savefig(fh, dpi=dpi, bbox_inches="tight", format=fmt))
        written.append(path)
    meta = _meta(name, notebook, caption, alt, [p.name for p in written], quick, "image", dpi=dpi)
    _write_sidecar(folder, name, meta)
    return written[0]


def save_animation(
    frames,
    name: str,
    *,
    notebook: str,
    caption: str = "",
    alt: str = "",
    formats=("gif",),
    fps: float = 10.0,
    root=None,
    quick: bool | None = None,
) -> Path:
    """``nst_tf.animation.save_animation`` into the figures folder, with a sidecar like
    :func:`save_figure`'s (so the export lists it in order, with its caption). Returns the
    first format's path; ``formats`` among ``gif`` and ``mp4`` (MP4 needs imageio-ffmpeg)."""
    from nst_tf.animation import save_animation as write

    for fmt in formats:
        if fmt not in ANIMATION_FORMATS:
            raise ConfigError(f"unsupported animation format {fmt!r}: use gif or mp4")
    quick = _quick(quick)
    folder = _folder(root, notebook, name, quick)
    written = [write(frames, folder / f"{name}.{fmt}", fps=fps) for fmt in formats]
    meta = _meta(name, notebook, caption, alt, [p.name for p in written], quick, "animation", fps=fps)
    _write_sidecar(folder, name, meta)
    return written[0]


# --- export ----------------------------------------------------------------------------------


def join_url(base: str, relative: str) -> str:
    """``base`` + ``relative`` with exactly one slash between them (none added when base is '')."""
    relative = urllib.parse.quote(relative.lstrip("/"), safe="/")
    if not base:
        return relative
    return base.rstrip("/") + "/" + relative


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _alt(meta: dict) -> str:
    """What the picture shows: the sidecar's alt text, else its title or caption."""
    alt = _one_line(meta.get("alt") or meta.get("title") or meta.get("caption") or "")
    if not alt:
        print(
            f"figure {meta['notebook']}/{meta['name']} has no caption or alt text: "
            "pass caption= (and alt=) to save_figure",
            file=sys.stderr,
        )
        kind = "Animation" if meta.get("kind") == "animation" else "Figure"
        alt = f"{kind} from notebook {meta['notebook']}"
    return alt


def _markdown_text(text: str) -> str:
    """Text for a Markdown page: '{{' as an HTML entity, so a Hugo site shows it instead of
    running it as a shortcode (Markdown renderers show the entity as '{{')."""
    return text.replace("{{", "&#123;&#123;")


def _markdown_alt(text: str) -> str:
    return _markdown_text(text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]"))


def _hugo_attr(text: str) -> str:
    # a double quote would end the shortcode's attribute early; '{{' would start a shortcode
    return text.replace('"', "'").replace("{{", "{ {").replace("}}", "} }")


def _html_attr(text: str) -> str:
    text = text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("{{", "&#123;&#123;")


def _entry(meta: dict, base_url: str, fmt: str) -> list[str]:
    urls = [join_url(base_url, f"{meta['notebook']}/{file}") for file in meta["files"]]
    alt, caption = _alt(meta), _one_line(meta.get("caption", ""))
    lines = [f"## {meta['notebook']}: {meta['name']}", ""]
    mp4 = [u for u in urls if u.lower().endswith(".mp4")]
    if mp4:  # neither Markdown nor Hugo's figure shortcode plays video
        gif = [u for u in urls if u.lower().endswith(".gif")]
        fallback = f'<img src="{gif[0]}" alt="{_html_attr(alt)}">' if gif else f'<a href="{mp4[0]}">MP4</a>'
        lines += [
            f'<video src="{mp4[0]}" title="{_html_attr(alt)}" controls loop muted playsinline>'
            f"{fallback}</video>",
            "",
        ]
        if caption:
            lines += [f"*{_markdown_text(caption)}*", ""]
    elif fmt == "hugo":
        lines += [
            f'{{{{< figure src="{urls[0]}" alt="{_hugo_attr(alt)}" caption="{_hugo_attr(caption)}" >}}}}',
            "",
        ]
    else:
        lines += [f"![{_markdown_alt(alt)}]({urls[0]})", ""]
        if caption:
            lines += [f"*{_markdown_text(caption)}*", ""]
    return lines


def _orphan_animations(root: Path, known: set[Path]) -> list[dict]:
    """GIF/MP4 files a notebook wrote without a sidecar (e.g. with animation.save_animation)."""
    found = {}
    for path in sorted(p for fmt in ANIMATION_FORMATS for p in root.glob(f"*/*.{fmt}")):
        if path in known or path.name.startswith("."):
            continue
        meta = found.setdefault(
            (path.parent.name, path.stem),
            {
                "name": path.stem,
                "notebook": path.parent.name,
                "kind": "animation",
                "files": [],
                "caption": "",
            },
        )
        meta["files"].append(path.name)
        meta["order"] = float("inf")
        meta["created"] = dt.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")
    return list(found.values())


def collect(root=None, *, include_quick: bool = False) -> tuple[list[dict], int]:
    """The sidecars under ``root`` in notebook order, and how many quick-mode ones were left out."""
    root = Path(root or figures_dir())
    metas, known = [], set()
    for sidecar in sorted(root.glob("*/*.json")):
        meta = json.loads(sidecar.read_text())
        meta.setdefault("files", [])
        known |= {sidecar.parent / f for f in meta["files"]}
        metas.append(meta)
    metas += _orphan_animations(root, known)
    skipped = sum(1 for m in metas if m.get("quick"))
    if not include_quick:
        metas = [m for m in metas if not m.get("quick")]

    def key(meta):
        order = meta.get("order")
        return (
            meta["notebook"],
            float("inf") if order is None else order,
            meta.get("created", ""),
            meta["name"],
        )

    return sorted(metas, key=key), (0 if include_quick else skipped)


def export_markdown(
    root=None, out=None, *, base_url: str = "", fmt: str = "markdown", include_quick: bool = False
) -> Path:
    """Write ``<root>/FIGURES.md`` listing every saved figure (see the module docstring)."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use {' or '.join(EXPORT_FORMATS)}")
    root = Path(root or figures_dir())
    metas, skipped = collect(root, include_quick=include_quick)
    if skipped:
        print(
            f"left out {skipped} quick-mode figure(s) (NST_QUICK=1): run in quality mode or --include-quick"
        )
    if not metas:
        hint = " (only quick-mode ones: run the notebooks in quality mode)" if skipped else ""
        raise ConfigError(f"no figures under {root}{hint}: run a notebook first (they call save_figure)")
    lines = ["# Figures", "", "Generated by nst_tf; each figure's caption comes from its notebook.", ""]
    for meta in metas:
        lines += _entry(meta, base_url, fmt)
    return write_text(out or root / "FIGURES.md", "\n".join(lines))
