"""The dataset card: README.md with counts, score histograms, exposure areas, agreement, examples, citation, license."""

from __future__ import annotations

import io
import json
import logging
from collections import defaultdict
from typing import Optional

import numpy as np

__all__ = ["CardStats", "write_card", "CITATION"]

log = logging.getLogger(__name__)

CITATION = """@inproceedings{he2024rethinking,
  title     = {Rethinking No-reference Image Exposure Assessment from Holism to Pixel: Models, Datasets and Benchmarks},
  author    = {He, Shuai and Zheng, Shuntian and Ming, Anlong and Wu, Banyu and Ma, Huadong},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2024}
}"""
EXAMPLES_PER_SPLIT = 3
MAX_EXAMPLES = 9
_TILE = 160
#: Images per split whose pixel samples enter the card's reliability figures (bounds the work).
MAX_RELIABILITY_IMAGES = 300


def reliability_of(samples: list[dict[str, np.ndarray]]) -> tuple[Optional[object], Optional[object]]:
    """(ICC(2,1), Krippendorff's alpha) of per-image pixel samples ``{chain: values}`` (None where not measurable).

    Alpha: raters x all sampled pixels, missing where an expert did not label the image.
    ICC(2,1) needs a complete table: the largest group of images sharing one set of experts.
    """
    from iea_data.core.quality import icc_2_1, krippendorff_alpha_interval

    if not samples:
        return None, None
    raters = sorted({c for smp in samples for c in smp})
    col = {r: k for k, r in enumerate(raters)}
    blocks, groups = [], defaultdict(list)
    for smp in samples:
        n = len(next(iter(smp.values())))
        block = np.full((len(raters), n), np.nan)
        for c, v in smp.items():
            block[col[c]] = v
        blocks.append(block)
        key = tuple(sorted(smp))
        groups[key].append(np.stack([smp[c] for c in key], axis=1))
    ratings = np.concatenate(blocks, axis=1)
    alpha = krippendorff_alpha_interval(ratings) if ratings.shape[1] >= 2 else None
    table = np.concatenate(max(groups.values(), key=lambda g: sum(len(x) for x in g)), axis=0)
    icc = icc_2_1(table) if table.shape[0] >= 2 and table.shape[1] >= 2 else None
    return icc, alpha


def _rel_text(r) -> str:
    return "–" if r is None else f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] (n = {r.n})"


class CardStats:
    """Figures gathered while the samples are written."""

    def __init__(self, splits: list[str]):
        self.splits = list(splits)
        self.scores: dict[str, list[float]] = defaultdict(list)
        self.areas: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        self.agreement: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
        self.examples: list[tuple[str, str, str, np.ndarray]] = []  # (split, name, path, residual)
        self.n: dict[str, int] = defaultdict(int)
        self.scenes: dict[str, set] = defaultdict(set)
        self.samples: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)
        self.experts: dict[str, set] = defaultdict(set)
        self.catalog_consensus: dict[str, int] = defaultdict(int)

    def add(self, smp, residual: Optional[np.ndarray], info: dict) -> None:
        self.n[smp.split] += 1
        if smp.scene is not None:
            self.scenes[smp.split].add(smp.scene)
        if smp.score is not None:
            self.scores[smp.split].append(float(smp.score))
        if residual is not None:
            st = info["stats"]
            self.areas[smp.split].append((st["frac_under"], st["frac_over"], st["mean_abs"]))
            if (
                smp.path
                and len(self.examples) < MAX_EXAMPLES
                and sum(e[0] == smp.split for e in self.examples) < EXAMPLES_PER_SPLIT
            ):
                from iea_data.core.imaging import resize_map

                h, w = residual.shape
                scale = _TILE / max(h, w)
                small = resize_map(residual, (max(1, round(h * scale)), max(1, round(w * scale))))
                self.examples.append((smp.split, smp.name, smp.path, small))
        if info.get("agreement"):
            a = info["agreement"]
            self.agreement[smp.split].append((a["n_experts"], a["spread"], a["sign_disagreement"]))
        if info.get("sample"):  # issue 15: expert values at a pixel sample, for ICC(2,1) and alpha
            if len(self.samples[smp.split]) < MAX_RELIABILITY_IMAGES:
                self.samples[smp.split].append(info["sample"])
            self.experts[smp.split].update(info["sample"])
        if str(info.get("method", "")).startswith("consensus:catalog:"):
            self.catalog_consensus[smp.split] += 1


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _histograms(stats: CardStats) -> Optional[bytes]:
    """Score histograms, one panel per split: 20 bins over 0..10, counts on the y axis."""
    from PIL import Image, ImageDraw

    splits = [s for s in stats.splits if stats.scores.get(s)]
    if not splits:
        return None
    pw, ph, ml, mb, mt = 420, 270, 58, 44, 34
    img = Image.new("RGB", (pw * len(splits), ph), "white")
    d = ImageDraw.Draw(img)
    edges = np.linspace(0, 10, 21)
    for k, split in enumerate(splits):
        x0 = k * pw
        counts, _ = np.histogram(np.clip(stats.scores[split], 0, 10), bins=edges)
        top = max(1, int(counts.max()))
        d.text(
            (x0 + ml, 4),
            f"{split}: score histogram (n={len(stats.scores[split])}, mean {np.mean(stats.scores[split]):.2f})",
            fill="black",
            font=_font(14),
        )
        w_plot, h_plot = pw - ml - 16, ph - mt - mb
        d.line([(x0 + ml, mt), (x0 + ml, mt + h_plot), (x0 + ml + w_plot, mt + h_plot)], fill="black", width=1)
        bw = w_plot / len(counts)
        for i, c in enumerate(counts):
            bh = h_plot * c / top
            d.rectangle(
                [x0 + ml + i * bw + 1, mt + h_plot - bh, x0 + ml + (i + 1) * bw - 1, mt + h_plot], fill=(67, 147, 195)
            )
        for v in range(0, 11, 2):
            x = x0 + ml + w_plot * v / 10
            d.line([(x, mt + h_plot), (x, mt + h_plot + 4)], fill="black")
            d.text((x, mt + h_plot + 6), str(v), fill="black", font=_font(12), anchor="ma")
        d.text(
            (x0 + ml + w_plot / 2, ph - 14), "score (0-10, higher is better)", fill="black", font=_font(12), anchor="ma"
        )
        for tick in sorted({0, top} | ({round(top / 2)} if top >= 4 else set())):
            y = mt + h_plot * (1 - tick / top)
            d.line([(x0 + ml - 4, y), (x0 + ml, y)], fill="black")
            d.text((x0 + ml - 6, y), str(tick), fill="black", font=_font(12), anchor="rm")
        d.text((x0 + 6, mt - 4), "images", fill=(80, 80, 80), font=_font(11), anchor="ls")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _contact_sheet(stats: CardStats) -> Optional[bytes]:
    """Examples: each photo beside its blue-white-red residual heatmap, one legend below."""
    from PIL import Image, ImageDraw

    from iea_data.core.heatmaps import DEFAULT_RANGE, colorize, legend
    from iea_data.core.imaging import read_image, resize_image

    tiles = []
    for split, name, path, residual in stats.examples:
        try:
            photo = read_image(path, max_side=_TILE).rgb
        except Exception as exc:  # an unreadable example is left out of the sheet
            log.warning("contact sheet: %s unreadable (%s)", path, exc)
            continue
        photo = resize_image(photo, residual.shape)
        tiles.append(
            (
                split,
                name,
                np.round(photo * 255).astype(np.uint8),
                colorize(residual, vmax=DEFAULT_RANGE),
                float(np.abs(residual).mean()),
            )
        )
    if not tiles:
        return None
    cell_w, cap = 2 * _TILE + 12, 42
    cols = 3 if len(tiles) >= 3 else len(tiles)
    rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    heights = [max(t[2].shape[0] for t in row) + cap for row in rows]
    width = max(cols * cell_w, 480)
    leg = legend(min(width - 20, 480), 44)
    sheet = Image.new("RGB", (width, 32 + sum(heights) + leg.shape[0] + 8), "white")
    d = ImageDraw.Draw(sheet)
    d.text(
        (8, 8),
        "Examples: photo | residual heatmap (blue too dark, white ideal, red too bright)",
        fill="black",
        font=_font(14),
    )
    y = 32
    for row, h in zip(rows, heights):
        for k, (split, name, photo, heat, mabs) in enumerate(row):
            x = k * cell_w + 4
            sheet.paste(Image.fromarray(photo), (x, y))
            sheet.paste(Image.fromarray(heat), (x + photo.shape[1] + 4, y))
            label = name if len(name) <= 40 else name[:18] + "…" + name[-20:]
            d.text((x, y + photo.shape[0] + 4), label, fill="black", font=_font(12))
            d.text(
                (x, y + photo.shape[0] + 20), f"{split} · mean |residual| {mabs:.3f}", fill=(80, 80, 80), font=_font(12)
            )
        y += h
    sheet.paste(Image.fromarray(leg), (10, y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _fmt(values, fn, digits=3) -> str:
    return f"{fn(values):.{digits}f}" if len(values) else "–"


def write_card(ws, flog, stats: CardStats, report, *, labels: str, consensus: str) -> None:
    """Write ``README.md`` and ``card/*.png`` into the release being built."""
    hist = _histograms(stats)
    sheet = _contact_sheet(stats)
    if hist:
        flog.write("card/score_histograms.png", hist)
    if sheet:
        flog.write("card/examples.png", sheet)
    n = sum(stats.n.values())
    size_cat = "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "n>100K"
    lic = ws.settings.release_license
    lines = [
        "---",
        "license: other",
        f"license_name: {json.dumps(lic)}",
        "task_categories:",
        "- image-segmentation",
        "tags:",
        "- image-exposure-assessment",
        "- iea40k",
        f"size_categories:\n- {size_cat}",
        "---",
        "",
        f"# {report.name} {report.version}",
        "",
        "Pixel-level image exposure assessment data in the IEA40K style: every labelled image has a signed "
        "residual map `Y(photo) - Y(ideal)` in [-1, 1] (Rec.601 luma of sRGB values; negative = too dark, "
        "positive = too bright, 0 = ideal).",
        "",
        f"- Label policy: `{labels}`"
        + (f" ({consensus} of each expert's newest accepted annotation)" if labels == "consensus" else ""),
        f"- Formats: {', '.join(report.formats)}",
        f"- License: {lic}",
        "- Check the files: `iea release verify PATH` (every file's sha256 is in `manifest.json`).",
        "",
        "## Splits",
        "",
        "No scene (images sharing a reference) is in two splits.",
        "",
        "| split | images | scenes | labelled | score mean | score min | score max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split in stats.splits:
        sc = stats.scores.get(split, [])
        lines.append(
            f"| {split} | {stats.n.get(split, 0)} | {len(stats.scenes.get(split, ()))} | "
            f"{len(stats.areas.get(split, []))} | "
            f"{_fmt(sc, np.mean, 2)} | {_fmt(sc, np.min, 2)} | {_fmt(sc, np.max, 2)} |"
        )
    lines += ["", "## Score histograms", ""]
    lines.append("![score histograms](card/score_histograms.png)" if hist else "No image of this release has a score.")
    lines += [
        "",
        "## Under- and over-exposed areas",
        "",
        "Share of pixels with residual below -0.05 (under) or above +0.05 (over), and mean |residual|, averaged over "
        "the labelled images of each split.",
        "",
        "| split | labelled | under | over | mean abs residual |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for split in stats.splits:
        a = np.array(stats.areas.get(split, []), dtype=np.float64).reshape(-1, 3)
        lines.append(
            f"| {split} | {len(a)} | {_fmt(a[:, 0], np.mean)} | {_fmt(a[:, 1], np.mean)} | {_fmt(a[:, 2], np.mean)} |"
        )
    lines += ["", "## Expert agreement", ""]
    if labels == "consensus" and any(stats.agreement.values()):
        lines += [
            "Per image: number of experts, mean per-pixel spread (standard deviation across experts) and the share "
            "of pixels where experts disagree on the sign (one below -0.05, another above +0.05).",
            "",
            "| split | images | experts (mean) | spread (mean) | sign disagreement (mean) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for split in stats.splits:
            a = np.array(stats.agreement.get(split, []), dtype=np.float64).reshape(-1, 3)
            lines.append(
                f"| {split} | {len(a)} | {_fmt(a[:, 0], np.mean, 2)} | {_fmt(a[:, 1], np.mean)} | "
                f"{_fmt(a[:, 2], np.mean)} |"
            )
        lines += [
            "",
            "### Reliability",
            "",
            "Inter-rater reliability over a deterministic sample of 64 pixels per image (at most "
            f"{MAX_RELIABILITY_IMAGES} images per split): ICC(2,1) (Shrout & Fleiss 1979, with its F-based 95 % "
            "interval) over the largest group of images sharing one set of experts, and Krippendorff's alpha "
            "(interval metric, bootstrap 95 % interval) over all of them. Experts: distinct experts in the split; "
            "catalog consensus: images whose consensus revision came from the catalog (`iea quality consensus`).",
            "",
            "| split | experts | experts per image (min-max) | catalog consensus "
            "| ICC(2,1) [95 % CI] | alpha [95 % CI] |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for split in stats.splits:
            a = np.array(stats.agreement.get(split, []), dtype=np.float64).reshape(-1, 3)
            icc, alpha = reliability_of(stats.samples.get(split, []))
            span = f"{int(a[:, 0].min())}-{int(a[:, 0].max())}" if len(a) else "–"
            lines.append(
                f"| {split} | {len(stats.experts.get(split, ()))} | {span} | {stats.catalog_consensus.get(split, 0)} | "
                f"{_rel_text(icc)} | {_rel_text(alpha)} |"
            )
        if report.below_min_experts:
            lines += ["", f"{len(report.below_min_experts)} image(s) had too few experts and are not in this release."]
    else:
        lines.append(f"Not applicable: the labels are `{labels}` (one source per image), not an expert consensus.")
    lines += ["", "## Examples", ""]
    lines.append("![examples](card/examples.png)" if sheet else "No labelled image with a file to show.")
    notes = []
    if report.without_files:
        notes.append(
            f"- {len(report.without_files)} image(s) are listed by name only: the catalog had no file for them."
        )
    if report.unlabelled:
        notes.append(f"- {len(report.unlabelled)} image(s) have no residual map under this label policy.")
    if notes:
        lines += ["", "## Notes", "", *notes]
    lines += ["", "## Citation", "", "```bibtex", CITATION, "```", ""]
    flog.write("README.md", "\n".join(lines).encode("utf-8"))
