"""The storm chart (matplotlib, Agg): latency of user-visible callbacks per pattern and site,
failure rates, upstream exchanges per code. With several kinds of login, one group per kind
and pattern ("mp:plain", "open:plain", ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.storm.runner import Run

COLOURS = {"naive": "#d1495b", "guarded": "#2e86ab"}


def draw(
    path: Path,
    runs: dict[str, dict[str, list[Run]]],
    patterns: dict[str, Any],
    throughput: dict[str, Any],
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(patterns)
    fig, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(max(14, 0.75 * len(names) + 4), 13), gridspec_kw={"height_ratios": [3, 2, 1.4]}
    )
    # Latency distributions: one box per site, side by side, per pattern.
    for offset, site in ((-0.2, "naive"), (0.2, "guarded")):
        data = [
            [
                hit.elapsed * 1000
                for run in runs[name][site]
                for login in run.logins
                for hit in login.visible
                if name != "refresh" or hit.role == "refresh"
            ]
            or [float("nan")]
            for name in names
        ]
        boxes = top.boxplot(
            data,
            positions=[i + offset for i in range(len(names))],
            widths=0.35,
            patch_artist=True,
            showfliers=True,
            whis=(1, 99),
            flierprops={"markersize": 2, "alpha": 0.4},
        )
        for box in boxes["boxes"]:
            box.set_facecolor(COLOURS[site])
            box.set_alpha(0.75)
        top.plot([], [], color=COLOURS[site], linewidth=8, label=site)
    top.set_yscale("log")
    top.set_ylabel("user-visible callback latency (ms, log)")
    top.set_xticks(
        range(len(names)),
        [f"{name}\n(the refresh)" if name == "refresh" else name for name in names],
        rotation=20,
    )
    top.grid(axis="y", which="both", alpha=0.3)
    top.legend(loc="upper left")
    top.set_title(
        f"{title}\nboxes: p25-p75, whiskers p1-p99; naive's include its fast 4xx "
        "answers (see failure rates below)",
        fontsize=10,
    )

    # Failure rates.
    width = 0.2
    bars = [
        ("naive", "user_visible_failure_rate", "naive: user-visible", 1.0),
        ("naive", "any_callback_4xx_5xx_rate", "naive: any duplicate 4xx/5xx", 0.45),
        ("guarded", "user_visible_failure_rate", "guarded: user-visible", 1.0),
        ("guarded", "any_callback_4xx_5xx_rate", "guarded: any duplicate 4xx/5xx", 0.45),
    ]
    for k, (site, key, label, alpha) in enumerate(bars):
        values = [patterns[name][site][key] * 100 for name in names]
        xs = [i + (k - 1.5) * width for i in range(len(names))]
        middle.bar(xs, values, width, color=COLOURS[site], alpha=alpha, label=label)
        for x, value in zip(xs, values, strict=True):
            if value == 0:
                middle.text(x, 1, "0", ha="center", va="bottom", fontsize=7, color=COLOURS[site])
    middle.set_ylabel("logins failed (%)")
    middle.set_ylim(0, 118)
    middle.set_xticks(range(len(names)), names, rotation=20)
    middle.legend(fontsize=8, ncol=4, loc="upper center")
    middle.grid(axis="y", alpha=0.3)

    # Exchanges per code (mean, max) and the 0 ms throughput.
    for offset, site in ((-0.2, "naive"), (0.2, "guarded")):
        means = [patterns[name][site]["exchanges_per_code"].get("mean", 0) for name in names]
        maxes = [patterns[name][site]["exchanges_per_code"].get("max", 0) for name in names]
        xs = [i + offset for i in range(len(names))]
        bottom.bar(xs, means, 0.35, color=COLOURS[site], alpha=0.75)
        bottom.scatter(xs, maxes, color=COLOURS[site], marker="_", s=200, zorder=3)
    bottom.axhline(1, color="black", linewidth=0.8, linestyle="--")
    bottom.set_ylabel("upstream exchanges / code\n(bar mean, dash max)")
    bottom.set_xticks(range(len(names)), names, rotation=20)
    if throughput:
        bottom.set_title(
            f"0 ms upstream, plain logins: guarded "
            f"{throughput['guarded']['throughput_logins_per_s']} / naive "
            f"{throughput['naive']['throughput_logins_per_s']} logins/s "
            f"(ratio {throughput.get('ratio_guarded_over_naive')})",
            fontsize=9,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
