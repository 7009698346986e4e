"""What a report figure's PNG encoding costs at zlib's default level (6) and at the level orchard.reports uses
(`PNG_COMPRESS_LEVEL`), on auto_labeling's sample grid: six of the demo's 640x360 camera frames with a box
each, as `orchard.auto_labeling.report._sample_grid` draws them (issue 17.1: the report is on the critical path).

    .venv/bin/python benchmarks/report_png_encoding.py [--rounds 5]

Each round builds the figure afresh and saves it once per level (alternating which goes first); the table
gives per level the median seconds of `savefig` (the draw for the tight bounding box, the draw, the encoding),
the file size and whether the decoded pixels equal the default level's, then the median per-round ratio.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

DEFAULT_LEVEL = 6  # zlib's and Pillow's default


def sample_grid(frames: list[bytes]):
    """auto_labeling's sample grid (2 x 3 frames, a red box, a title each), drawn as its report draws it."""
    from matplotlib.patches import Rectangle
    from PIL import Image

    from orchard.reports import new_figure

    figure = new_figure(figsize=(12, 5.2))
    for index, frame in enumerate(frames):
        axes = figure.add_subplot(2, 3, index + 1)
        with Image.open(io.BytesIO(frame)) as image:
            axes.imshow(image.convert("RGB"))
        axes.add_patch(Rectangle((10, 20), 40, 80, fill=False, color="red", lw=1.5))
        axes.set_title(f"frame-{index:05d}.png", fontsize=8)
        axes.axis("off")
    figure.tight_layout()
    return figure


def encode(figure, level: int) -> tuple[float, bytes]:
    """orchard.reports._png's savefig at zlib `level`: (seconds, PNG bytes)."""
    buffer = io.BytesIO()
    started = time.perf_counter()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", pil_kwargs={"compress_level": level})
    return time.perf_counter() - started, buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    import numpy as np
    from PIL import Image

    from local_aws.demo_data import auto_labeling as demo
    from orchard.reports import PNG_COMPRESS_LEVEL

    frames = [demo.frame(index)[0] for index in range(6)]
    levels = (DEFAULT_LEVEL, PNG_COMPRESS_LEVEL)
    encode(sample_grid(frames), DEFAULT_LEVEL)  # warm: fonts, the Agg renderer
    seconds: dict[int, list[float]] = {level: [] for level in levels}
    pngs: dict[int, bytes] = {}
    for round_ in range(options.rounds):
        for level in levels if round_ % 2 == 0 else reversed(levels):
            took, pngs[level] = encode(sample_grid(frames), level)
            seconds[level].append(took)
    pixels = {level: np.asarray(Image.open(io.BytesIO(png))) for level, png in pngs.items()}
    print(f"{'zlib level':<12}{'savefig s':>10}{'bytes':>12}  same pixels")
    for level in levels:
        same = np.array_equal(pixels[level], pixels[DEFAULT_LEVEL])
        print(f"{level:<12}{statistics.median(seconds[level]):10.3f}{len(pngs[level]):12,d}  {same}")
    ratios = [fast / slow for fast, slow in zip(seconds[PNG_COMPRESS_LEVEL], seconds[DEFAULT_LEVEL])]
    print(
        f"level {PNG_COMPRESS_LEVEL} / level {DEFAULT_LEVEL}: median per-round ratio {statistics.median(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
