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


def markdown(res: dict) -> str:
    m = res.get("machine", {})
    lines = [
        "# nst_tf benchmark results",
        "",
        f"Mode: **{res.get('mode')}**, images: `{Path(res.get('content', '')).name}` + "
        f"`{Path(res.get('style', '')).name}`{' (' + res['image_note'] + ')' if res.get('image_note') else ''}. "
        f"Machine: {m.get('cpu')} ({m.get('cores')} cores), TF {m.get('tensorflow')}, "
        f"load average at start {_f((m.get('load_average_at_start') or [None])[0], '{:.1f}')}. "
        f"Weights: {res.get('weights', {}).get('source')}. {_run_times(res)}",
        "",
        "All times are wall-clock seconds in one process, one sitting; CPU seconds are in results.json.",
        "",
    ]
    ps = res.get("per_step")
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
            "| size | ours s/step | evals/step | ours s/eval | naive s/step | lean s/eval | ours/naive | ours eval/lean | lean GFLOP/s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in ps.values():
            lines.append(
                f"| {r['hw'][1]}x{r['hw'][0]} | {_f(r['ours_s_per_step'])} | {_f(r['ours_evals_per_step'], '{:.2f}')} | "
                f"{_f(r['ours_s_per_eval'])} | {_f(r['naive_s_per_step'])} | {_f(r['lean_s_per_eval'])} | "
                f"**{_f(r['ratio_ours_naive'], '{:.2f}')}** | {_f(r['ratio_ours_eval_lean'], '{:.2f}')} | "
                f"{_f(r['lean_gflops_per_s'], '{:.0f}')} |"
            )
        lines.append("")
    q = res.get("quality")
    if q:
        lines += [
            "## 2. Time to quality: default config (coarse-to-fine) vs single-scale L-BFGS",
            "",
            "Target = the full-size loss the single-scale reference reaches after N L-BFGS steps; time = wall "
            "seconds from the `transfer_style` call (targets, tracing and coarse stages included) until a "
            f"full-size step reaches it. Default pyramid: `{res.get('config', {}).get('pyramid')}`.",
            "",
            "| size | reference steps | target loss | reference s | ours s | ours full-size steps | speed-up |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in q.values():
            for row in r["table"]:
                lines.append(
                    f"| {r['hw'][1]}x{r['hw'][0]} | {row['ref_steps']} | {_f(row['target_loss'], '{:.4g}')} | "
                    f"{_f(row['ref_s'], '{:.1f}')} | {_f(row['ours_s'], '{:.1f}', 'not reached')} | "
                    f"{_f(row['ours_full_steps'], '{:d}')} | **{_f(row['speedup'], '{:.2f}x')}** |"
                )
            if r.get("note"):
                lines.append(f"| {r['hw'][1]}x{r['hw'][0]} | {r['note']} | | | | | |")
        lines.append("")
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
            lines += [
                "Same pixels, same weights, pastiche's default loss; pastiche plain L-BFGS at full size (time from its "
                "first step, start-up excluded), ours the default coarse-to-fine L-BFGS (time from the start, target "
                "computation and tracing included).",
                "",
                "| size | pastiche steps | target loss | pastiche s | ours s | speed-up | initial loss rel. diff |",
                "|---|---|---|---|---|---|---|",
            ]
            for r in p["sizes"].values():
                for row in r["table"]:
                    lines.append(
                        f"| {r['hw'][1]}x{r['hw'][0]} | {row['pastiche_steps']} | {_f(row['target_loss'], '{:.4g}')} | "
                        f"{_f(row['pastiche_s'], '{:.1f}')} | {_f(row['ours_s'], '{:.1f}', 'not reached')} | "
                        f"**{_f(row['speedup'], '{:.2f}x')}** | {_f(r['initial_loss']['relative_difference'], '{:.1e}')} |"
                    )
            lines.append("")
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

    panels = [("quality", s, r) for s, r in (res.get("quality") or {}).items()]
    p = res.get("pastiche") or {}
    panels += [("pastiche", s, r) for s, r in (p.get("sizes") or {}).items()]
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4), squeeze=False)
    for ax, (kind, _size, r) in zip(axes[0], panels):
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
            title = f"{hw[1]}x{hw[0]}: nst_tf objective"
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
            title = f"{hw[1]}x{hw[0]}: pastiche's objective"
        ys = [c[2] for c in curves.get("reference", [])] + [c[1] for c in curves.get("pastiche", [])]
        ys += [c[2] for c in full]
        if ys and min(ys) > 0:
            ax.set_yscale("log")
            lo = min(ys)
            hi = sorted(ys)[int(0.9 * (len(ys) - 1))] if len(ys) > 5 else max(ys)
            ax.set_ylim(lo * 0.95, max(hi, lo) * 1.6)
        ax.set_title(title)
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
