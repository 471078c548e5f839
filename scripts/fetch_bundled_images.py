"""Regenerate the bundled example images in data/src/ from the scikit-image wheel.

Every image comes from the ``skimage/data/`` folder that ships inside the
scikit-image wheel (no network: nothing is fetched with pooch), and each is
public domain or CC0 (see data/src/CREDITS.md, which this script does not
touch). Images are resized so the long side is at most 512 px; photographs
are written as JPEG (quality 92, no chroma subsampling), the grayscale
textures as lossless PNG. Output is deterministic for a given Pillow version.

Usage (from the repository root)::

    .venv/bin/python scripts/fetch_bundled_images.py          # write the files
    .venv/bin/python scripts/fetch_bundled_images.py --check  # only report differences
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "data" / "src"
LONG_SIDE = 512  # px: enough for teaching runs, small enough for git
MAX_BYTES = 300_000  # refuse to bundle anything larger
JPEG_QUALITY = 92

# (name in nst_tf, kind, file in skimage/data, output format)
IMAGES = [
    ("astronaut", "content", "astronaut.png", "JPEG"),
    ("chelsea", "content", "chelsea.png", "JPEG"),
    ("coffee", "content", "coffee.png", "JPEG"),
    ("rocket", "content", "rocket.jpg", "JPEG"),
    ("hubble_deep_field", "style", "hubble_deep_field.jpg", "JPEG"),
    ("brick", "style", "brick.png", "PNG"),
    ("grass", "style", "grass.png", "PNG"),
    ("gravel", "style", "gravel.png", "PNG"),
]
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png"}


def skimage_data_dir() -> Path:
    """The ``data`` folder inside the installed scikit-image package."""
    try:
        import skimage
    except ImportError:
        sys.exit("scikit-image is not installed: run `pip install scikit-image` in the venv first")
    return Path(skimage.__file__).resolve().parent / "data"


def encode(src: Path, fmt: str) -> bytes:
    """Read ``src``, orient, shrink to LONG_SIDE and encode as ``fmt`` bytes."""
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        if max(im.size) > LONG_SIDE:
            scale = LONG_SIDE / max(im.size)
            size = tuple(max(1, int(s * scale + 0.5)) for s in im.size)
            im = im.resize(size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        if fmt == "JPEG":
            im.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
        else:
            im.save(buf, "PNG", optimize=True)
        return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; write nothing")
    args = parser.parse_args(argv)

    data_dir = skimage_data_dir()
    changed = 0
    total = 0
    for name, kind, filename, fmt in IMAGES:
        src = data_dir / filename
        if not src.is_file():
            sys.exit(f"{src} is missing: this scikit-image wheel does not ship '{filename}'")
        blob = encode(src, fmt)
        if len(blob) > MAX_BYTES:
            sys.exit(f"{name}: {len(blob):,} bytes is over the {MAX_BYTES:,}-byte limit")
        dest = OUT_DIR / kind / f"{name}{EXTENSIONS[fmt]}"
        same = dest.is_file() and dest.read_bytes() == blob
        changed += not same
        total += len(blob)
        with Image.open(io.BytesIO(blob)) as im:
            w, h = im.size
            mode = im.mode
        status = "same" if same else ("differs" if args.check else "written")
        print(f"{kind:8s} {dest.name:24s} {w:4d}x{h:<4d} {mode:3s} {len(blob):8,d} B  {status}")
        if not args.check and not same:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_bytes(blob)
            tmp.replace(dest)
    print(f"total {total:,} bytes in {len(IMAGES)} images")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
