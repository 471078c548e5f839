"""Save figures for blogs and papers, and export them as a page that publishes as is.

``save_figure(fig, "reconstruction_grid", notebook="01_content_reconstruction",
caption=...)`` writes ``data/output/figures/<notebook>/<name>.png`` (and SVG/PDF
on request) plus ``<name>.json``, the sidecar: caption, alt text, the order in
which the notebook saved it, and whether it was made in quick mode.
``save_animation(frames, "optimisation", notebook=..., caption=...)`` does the
same for GIF/MP4 animations.

``python -m nst_tf figures`` (or ``export_page``) writes one page listing every figure
and animation in notebook order (notebook number, then the order saved), either as
plain Markdown (``--format markdown``, the default) or as Hugo ``{{< figure >}}``
shortcodes (``--format hugo``): one form per page, so each figure renders once.
MP4s become an HTML ``<video>`` element (Hugo: needs ``markup.goldmark.renderer.unsafe``);
GIFs, and GIF/MP4 files saved without a sidecar, are listed like figures. The page goes to
``<root>/FIGURES.md`` (replaced when it is one this export wrote) or ``--output PATH``
(never replaced without ``--overwrite``); one line says where.

Publishing safely: every file is checked without blocking (``files.open_input``: a FIFO
named ``*.json`` is skipped, not waited on); a sidecar that is not JSON or whose fields have
the wrong types is skipped with one warning line; a listed ``x.png`` that was published as
``x.jpg`` (``scripts/run_notebooks.py``) links to the JPEG, so every link names a file
that exists. Every text field (name, notebook, caption, alt) is escaped for where it lands
(Markdown, a shortcode parameter, an HTML attribute); ``--base-url`` must be a relative path
or an http(s) URL and is percent-encoded. Every image has alt text: the sidecar's alt, title
or caption (else a line naming the figure, with a warning).

Quick mode (``NST_QUICK=1``) figures are marked ``"quick": true``; a quick-mode
save never replaces a quality figure (it goes to ``<notebook>/quick/`` instead,
with one line saying so), and the export leaves quick figures out unless asked
(``--include-quick``: then each is marked "(quick mode)" in its heading and caption).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import re
import sys
import urllib.parse
from pathlib import Path

from nst_tf.errors import ConfigError
from nst_tf.files import atomic_write, check_input, open_input, os_reason, printable, user_path, write_text

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
    if quick and os.path.lexists(sidecar):
        try:
            existing_quick = read_sidecar(sidecar)["quick"]
        except ConfigError:
            existing_quick = True  # unusable (not a file, not JSON, wrong types): nothing worth protecting
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

#: The first line of every page this export writes (the default page is replaced only if it has it).
PAGE_HEADER = "# Figures"
#: Extensions a page shows inline (an image element); anything else (PDF) becomes a link.
_SHOWN = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp")
#: What ``scripts/run_notebooks.py`` may have published a listed image as (PNG as JPEG): the
#: sidecars keep the name the notebook saved, so the export looks for these too.
_PUBLISHED_AS = (".jpg", ".jpeg", ".png", ".webp")
#: A sidecar is a few hundred bytes; anything over this is not one.
_SIDECAR_MAX = 1 << 20
_TEXT_FIELDS = ("name", "notebook", "caption", "alt", "title", "created")
_KINDS = ("image", "animation")
_BASE_URL_FIX = "use a relative path (/images/nst, img/nst) or an http(s) URL (https://blog.example/img)"
QUICK_NOTE = "Quick-mode preview (NST_QUICK=1), not the quality figure"


def _json_type(value) -> str:
    for types, name in (
        (bool, "true/false"),
        ((int, float), "a number"),
        (str, "text"),
        (list, "a list"),
        (dict, "an object"),
    ):
        if isinstance(value, types):
            return name
    return "null"


def _plain_name(name: str) -> bool:
    """A file name inside the sidecar's folder: no folder part, no '..', no control characters."""
    return (
        bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0") and name.isprintable()
    )


def _check_meta(meta, shown: str) -> dict:
    """The sidecar's fields with their types checked (ConfigError naming the first wrong one)."""

    def wrong(key, want):
        raise ConfigError(
            f"figure sidecar '{shown}': {key!r} is {_json_type(meta[key])}, not {want} — "
            "fix it or save the figure again (save_figure)"
        )

    if not isinstance(meta, dict):
        raise ConfigError(f"figure sidecar '{shown}' holds {_json_type(meta)}, not an object — remove it")
    for key in _TEXT_FIELDS:
        if meta.get(key) is not None and not isinstance(meta[key], str):
            wrong(key, "text")
    files = meta.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        wrong("files", "a list of file names")
    for name in files:
        if not _plain_name(name):
            raise ConfigError(
                f"figure sidecar '{shown}': file {printable(name)!r} is not a file name in the sidecar's "
                "folder — list only the names of the files next to it"
            )
    order = meta.get("order")
    if order is not None and (
        isinstance(order, bool) or not isinstance(order, (int, float)) or not math.isfinite(order)
    ):
        wrong("order", "a finite number")
    if meta.get("quick") is not None and not isinstance(meta["quick"], bool):
        wrong("quick", "true or false")
    kind = meta.get("kind")
    if kind is not None and kind not in _KINDS:
        raise ConfigError(f"figure sidecar '{shown}': 'kind' is {printable(kind)!r}, not image or animation")
    out = {key: meta.get(key) or "" for key in _TEXT_FIELDS}
    out.update(files=list(files), order=order, quick=bool(meta.get("quick")), kind=kind)
    return out


def read_sidecar(path) -> dict:
    """A figure sidecar, read through :func:`nst_tf.files.open_input` (never blocks on a FIFO or a
    device) and type-checked; ConfigError (one line) when it cannot be used."""
    shown = printable(path)
    fix = "remove it, or rename it so that it does not end in .json"
    with open_input(path, what="figure sidecar", error=ConfigError, fix=fix) as fh:
        try:
            data = fh.read(_SIDECAR_MAX + 1)
        except OSError as err:
            raise ConfigError(f"cannot read figure sidecar '{shown}': {os_reason(err)}") from None
    if len(data) > _SIDECAR_MAX:
        raise ConfigError(f"figure sidecar '{shown}' is over {_SIDECAR_MAX >> 20} MiB: not a sidecar — {fix}")
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        reason = printable(str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise ConfigError(f"figure sidecar '{shown}' is not JSON ({reason}) — {fix}") from None
    except RecursionError:  # [[[[...]]]] thousands deep
        raise ConfigError(f"figure sidecar '{shown}' is nested too deeply to be a sidecar — {fix}") from None
    return _check_meta(meta, shown)


def check_base_url(base: str) -> str:
    """``base`` checked and percent-encoded for links and attributes: '' (links relative to the
    page), a relative path (``/images/nst``, ``img``) or an http(s) URL. Anything else (``javascript:``,
    ``data:``, ``//host``, spaces, quotes left raw) is a ConfigError naming the fix."""
    if not base:
        return ""
    shown = printable(base)
    if any(c.isspace() or not c.isprintable() for c in base) or "\\" in base:
        raise ConfigError(
            f"--base-url {shown!r} has spaces, backslashes or control characters — {_BASE_URL_FIX}"
        )
    if "?" in base or "#" in base:
        raise ConfigError(
            f"--base-url {shown!r} has a query or fragment (? or #): it names a folder — {_BASE_URL_FIX}"
        )
    parts = urllib.parse.urlsplit(base)
    if parts.scheme:
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"--base-url {shown!r} is not a relative path or an http(s) URL — {_BASE_URL_FIX}"
            )
        if not re.fullmatch(r"[A-Za-z0-9._~\-]+(:[0-9]+)?", parts.netloc):
            raise ConfigError(f"--base-url {shown!r} has an unusual host part — {_BASE_URL_FIX}")
    elif base.startswith("//"):
        raise ConfigError(
            f"--base-url {shown!r} is a scheme-relative URL: write https://... — {_BASE_URL_FIX}"
        )
    path = urllib.parse.quote(re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", parts.path), safe="/%:@!$*+,;=")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def join_url(base: str, relative: str) -> str:
    """``base`` + ``relative`` with exactly one slash between them (none added when base is '');
    ``relative`` is percent-encoded (``base`` is as :func:`check_base_url` returns it)."""
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
        _warn(
            f"figure {meta['notebook']}/{meta['name']} has no caption or alt text: "
            "pass caption= (and alt=) to save_figure"
        )
        kind = "Animation" if meta.get("kind") == "animation" else "Figure"
        words = _one_line(re.sub(r"[_\-.]+", " ", meta["name"])) or meta["name"]
        alt = f"{kind}: {words[:1].upper()}{words[1:]}, from notebook {meta['notebook']}"
    return alt


#: Characters that are markup in Markdown (CommonMark/Goldmark), in raw HTML or in Hugo
#: (``{{< >}}``, ``{{% %}}``), written as character references: a renderer shows them as the
#: characters and never runs them (no backslash: it would escape a shortcode's closing quote).
_MD_REFS = {c: f"&#{ord(c)};" for c in "\\`*_[]#|~{}"}
_MD_REFS.update({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _markdown_text(text: str) -> str:
    """One line of text for a Markdown page (headings, captions, image alt text): shown as is,
    never rendered as emphasis, a link, HTML or a Hugo shortcode. An underscore inside a word
    (``03_style_transfer``) is left readable: it never starts emphasis."""
    text = _one_line(text)
    out = []
    for i, c in enumerate(text):
        if c == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            out.append(c)
        else:
            out.append(_MD_REFS.get(c, c))
    return "".join(out)


def _hugo_attr(text: str, markdown: bool) -> str:
    """Text for a quoted parameter of Hugo's figure shortcode. ``markdown``: a parameter the
    shortcode renders as Markdown (``caption``), else one it HTML-escapes itself (``alt``).
    A double quote would end the parameter early (it becomes '), a trailing backslash would
    escape the closing quote, '{{' would start a shortcode."""
    text = _markdown_text(text) if markdown else _one_line(text).rstrip("\\")
    return text.replace('"', "'").replace("{{", "{ {").replace("}}", "} }")


def _html_attr(text: str) -> str:
    """Text for a double-quoted attribute of a raw HTML element (also inside a Hugo page)."""
    table = {
        "&": "&amp;",
        '"': "&quot;",
        "'": "&#39;",
        "<": "&lt;",
        ">": "&gt;",
        "{": "&#123;",
        "}": "&#125;",
    }
    return "".join(table.get(c, c) for c in _one_line(text))


def _entry(meta: dict, urls: list[str], fmt: str) -> list[str]:
    alt, caption = _alt(meta), _one_line(meta.get("caption", ""))
    quick = bool(meta.get("quick"))
    if quick:
        caption = f"{QUICK_NOTE}: {caption}" if caption else QUICK_NOTE
    heading = f"{_markdown_text(meta['notebook'])}: {_markdown_text(meta['name'])}"
    lines = [f"## {heading}" + (" (quick mode)" if quick else ""), ""]
    lower = [u.lower() for u in urls]
    mp4 = [u for u, low in zip(urls, lower) if low.endswith(".mp4")]
    shown = [u for u, low in zip(urls, lower) if low.endswith(_SHOWN)]
    caption_line = [f"*{_markdown_text(caption)}*", ""] if caption else []
    if mp4:  # neither Markdown nor Hugo's figure shortcode plays video
        gif = [u for u in shown if u.lower().endswith(".gif")]
        fallback = (
            f'<img src="{_html_attr(gif[0])}" alt="{_html_attr(alt)}">'
            if gif
            else f'<a href="{_html_attr(mp4[0])}">{_html_attr(alt)} (MP4)</a>'
        )
        lines += [
            f'<video src="{_html_attr(mp4[0])}" title="{_html_attr(alt)}" aria-label="{_html_attr(alt)}"'
            f" controls loop muted playsinline>{fallback}</video>",
            "",
            *caption_line,
        ]
    elif not shown:  # e.g. a PDF only: a link, not an image that would not display
        lines += [
            f"[{_markdown_text(alt)} ({urls[0].rsplit('.', 1)[-1].upper()})]({urls[0]})",
            "",
            *caption_line,
        ]
    elif fmt == "hugo":
        extra = ' class="nst-quick"' if quick else ""
        lines += [
            f'{{{{< figure src="{shown[0]}" alt="{_hugo_attr(alt, False)}" '
            f'caption="{_hugo_attr(caption, True)}"{extra} >}}}}',
            "",
        ]
    else:
        lines += [f"![{_markdown_text(alt)}]({shown[0]})", "", *caption_line]
    return lines


def _warn(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr)


def _listing(root: Path, ext: str) -> list[Path]:
    """``<root>/<notebook>/*.<ext>`` and ``<root>/<notebook>/quick/*.<ext>``, hidden names left out
    (the writers' temporary files). Lists names only: nothing is opened here."""
    found = set()
    for pattern in (f"*/*.{ext}", f"*/quick/*.{ext}"):
        found |= {p for p in root.glob(pattern) if not p.name.startswith(".")}
    return sorted(found)


def _is_quick_folder(folder: Path, root: Path) -> bool:
    return folder.name == "quick" and folder.parent != root


def _usable(path: Path) -> str | None:
    """None when ``path`` is a readable regular file, else why not (checked without blocking)."""
    try:
        check_input(path, what="figure file", error=ConfigError, fix="remove it")
    except ConfigError as err:
        return str(err)
    return None


def _resolve(folder: Path, name: str) -> tuple[Path | None, str]:
    """The file a sidecar lists, or what publishing turned it into (``x.png`` -> ``x.jpg``)."""
    listed = folder / name
    candidates = [listed]
    if listed.suffix.lower() in tuple(f".{f}" for f in IMAGE_FORMATS):
        candidates += [listed.with_suffix(ext) for ext in _PUBLISHED_AS if ext != listed.suffix.lower()]
    reason = f"{printable(name)} is not there"
    for path in candidates:
        if not os.path.lexists(path):
            continue
        why = _usable(path)
        if why is None:
            return path, ""
        reason = why
    return None, reason


def _orphan_animations(root: Path, known: set[Path]) -> list[dict]:
    """GIF/MP4 files a notebook wrote without a sidecar (e.g. with animation.save_animation)."""
    found = {}
    for path in sorted(p for fmt in ANIMATION_FORMATS for p in _listing(root, fmt)):
        if path in known:
            continue
        why = _usable(path)
        if why is not None:
            _warn(f"skipped {why}")
            continue
        folder = path.parent
        quick = _is_quick_folder(folder, root)
        meta = found.setdefault(
            (folder, path.stem),
            {
                "name": path.stem,
                "notebook": (folder.parent if quick else folder).name,
                "kind": "animation",
                "files": [],
                "paths": [],
                "caption": "",
                "alt": "",
                "title": "",
                "quick": quick,
                "order": None,
                "created": "",
            },
        )
        meta["files"].append(path.name)
        meta["paths"].append(path)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        meta["created"] = dt.datetime.fromtimestamp(mtime).isoformat(timespec="seconds")
    return list(found.values())


def collect(root=None, *, include_quick: bool = False) -> tuple[list[dict], int]:
    """The figures under ``root`` in notebook order, and how many quick-mode ones were left out.

    Each is its sidecar's fields plus ``paths``, the files on disk it shows. A sidecar that
    cannot be used (not a regular file, not JSON, fields of the wrong type, none of its files
    there) is skipped with one warning line; every file is checked without blocking."""
    root = Path(root or figures_dir())
    metas, known = [], set()
    for sidecar in _listing(root, "json"):
        try:
            meta = read_sidecar(sidecar)
        except ConfigError as err:
            _warn(f"skipped {err}")
            continue
        folder = sidecar.parent
        quick_folder = _is_quick_folder(folder, root)
        notebook_folder = folder.parent if quick_folder else folder
        meta["name"] = meta["name"] or sidecar.stem
        meta["notebook"] = meta["notebook"] or notebook_folder.name
        meta["quick"] = meta["quick"] or quick_folder
        paths, reasons = [], []
        for name in meta["files"]:
            known.add(folder / name)
            path, reason = _resolve(folder, name)
            if path is None:
                reasons.append(reason)
            elif path not in paths:
                paths.append(path)
                known.add(path)
        if not paths:
            why = "; ".join(reasons) or "it lists no files"
            _warn(f"skipped figure sidecar '{printable(sidecar)}': {why}")
            continue
        if reasons:
            _warn(f"figure sidecar '{printable(sidecar)}': left out {'; '.join(reasons)}")
        meta["kind"] = meta["kind"] or (
            "animation" if all(p.suffix.lower() in (".gif", ".mp4") for p in paths) else "image"
        )
        meta["paths"] = paths
        metas.append(meta)
    metas += _orphan_animations(root, known)
    skipped = sum(1 for m in metas if m["quick"])
    if not include_quick:
        metas = [m for m in metas if not m["quick"]]

    def key(meta):
        folder = meta["paths"][0].parent
        notebook = (folder.parent if _is_quick_folder(folder, root) else folder).name
        order = meta["order"]
        return (notebook, meta["quick"], math.inf if order is None else order, meta["created"], meta["name"])

    return sorted(metas, key=key), (0 if include_quick else skipped)


def _page_target(root: Path, out, overwrite: bool | None) -> tuple[Path, bool]:
    """Where the page goes and whether it may replace a file there.

    ``out`` given: an existing file is replaced only with ``overwrite``. The default page
    ``<root>/FIGURES.md`` is replaced when it is one this export wrote (or with ``overwrite``)."""
    target = user_path(out) if out is not None else root / "FIGURES.md"
    shown = printable(target)
    if os.path.isdir(target):
        raise ConfigError(f"--output '{shown}' is a folder: name the page file, e.g. {shown}/FIGURES.md")
    if overwrite or not os.path.lexists(target):
        return target, bool(overwrite)
    if out is not None:
        raise ConfigError(
            f"'{shown}' already exists — pass --overwrite to replace it, or choose another --output"
        )
    fix = "pass --overwrite to replace it, or choose another --output"
    with open_input(target, what="page", error=ConfigError, fix=fix) as fh:
        ours = fh.read(len(PAGE_HEADER) + 1).decode("utf-8", "replace") == PAGE_HEADER + "\n"
    if not ours:
        raise ConfigError(f"'{shown}' exists and was not written by `figures` — {fix}")
    return target, True


def export_page(
    root=None,
    out=None,
    *,
    base_url: str = "",
    fmt: str = "markdown",
    include_quick: bool = False,
    overwrite: bool | None = None,
) -> tuple[Path, int]:
    """Write the page (see the module docstring); return its path and how many figures it lists.

    ``out`` (default ``<root>/FIGURES.md``): without ``base_url`` links are relative to the
    page's folder, so they work wherever it is written. ``overwrite``: see :func:`_page_target`."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use {' or '.join(EXPORT_FORMATS)}")
    base = check_base_url(base_url)
    root = Path(root or figures_dir())
    if not root.is_dir():
        what = "does not exist" if not os.path.lexists(root) else "is not a folder"
        raise ConfigError(f"figures folder '{printable(root)}' {what}: run a notebook first or pass --root")
    target, replace = _page_target(root, out, overwrite)
    metas, skipped = collect(root, include_quick=include_quick)
    if skipped:
        print(
            f"left out {skipped} quick-mode figure(s) (NST_QUICK=1): run in quality mode or --include-quick"
        )
    if not metas:
        hint = " (only quick-mode ones: run the notebooks in quality mode)" if skipped else ""
        raise ConfigError(
            f"no figures under '{printable(root)}'{hint}: run a notebook first (they call save_figure)"
        )
    page_dir = target.absolute().parent
    lines = [PAGE_HEADER, "", "Generated by nst_tf; each figure's caption comes from its notebook.", ""]
    for meta in metas:
        if base:
            urls = [join_url(base, p.relative_to(root).as_posix()) for p in meta["paths"]]
        else:
            urls = [
                join_url("", Path(os.path.relpath(p.absolute(), page_dir)).as_posix()) for p in meta["paths"]
            ]
        lines += _entry(meta, urls, fmt)
    return write_text(target, "\n".join(lines), overwrite=replace), len(metas)


def export_markdown(
    root=None,
    out=None,
    *,
    base_url: str = "",
    fmt: str = "markdown",
    include_quick: bool = False,
    overwrite: bool | None = None,
) -> Path:
    """Write ``<root>/FIGURES.md`` (or ``out``) listing every saved figure; returns its path."""
    return export_page(
        root, out, base_url=base_url, fmt=fmt, include_quick=include_quick, overwrite=overwrite
    )[0]
