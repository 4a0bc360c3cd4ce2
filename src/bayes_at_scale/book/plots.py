"""One seaborn theme and the book's figure helpers.

Each helper takes a tidy data frame and column names and returns a matplotlib ``Figure``; it
imports nothing else from the package.  Figures are built without pyplot, so nothing is shown
unless a chapter displays or glues it.  Chapters ``glue`` the figures into their prose.
"""

from __future__ import annotations

import textwrap

import matplotlib.patches as mpl_patches
from matplotlib.figure import Figure
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

PALETTE = "viridis"


#: Characters per line of a wrapped category label.
WRAP = 14


def set_theme() -> None:
    """The book's look: seaborn's whitegrid, a readable context, fixed figure size and DPI."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.figsize": (6.4, 4.2), "figure.dpi": 100, "savefig.dpi": 100,
                      "axes.titleweight": "bold"})


def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.empty:
        raise ValueError("cannot plot an empty data frame")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"data frame lacks column(s) {', '.join(missing)}")


def agreement(df: pd.DataFrame, x: str, y: str, hue: str, *, title: str = "",
              xlabel: str = "", ylabel: str = "") -> Figure:
    """Scatter of ``y`` against ``x`` on [0, 1] with the identity line, coloured (and sized) by
    log ``hue``; points with the largest ``hue`` are drawn on top."""
    _require(df, x, y, hue)
    df = df.sort_values(hue)  # the best-supported points are drawn last, on top
    fig = Figure()
    ax = fig.subplots()
    size = 6 + 6 * np.log10(df[hue].clip(lower=1))
    points = ax.scatter(df[x], df[y], c=df[hue], cmap=PALETTE, norm=LogNorm(), s=size, alpha=0.7,
                        linewidths=0)
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="identity")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=xlabel or x, ylabel=ylabel or y,
           title=title)
    fig.colorbar(points, ax=ax, label=hue)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def loglog_decay(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None,
                 reference_slope: float = -0.5, title: str = "", xlabel: str = "",
                 ylabel: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes: points, binned medians and a ``x^slope`` reference.

    The reference line passes through the median of ``y`` at the smallest ``x``.
    """
    _require(df, x, y, *(c for c in [hue] if c))
    data = df[(df[x] > 0) & (df[y] > 0)]
    if data.empty:
        raise ValueError("log-log plot needs positive values")
    fig = Figure()
    ax = fig.subplots()
    levels = list(dict.fromkeys(data[hue])) if hue else []
    palette = dict(zip(levels, sns.color_palette(n_colors=len(levels)))) if hue else None
    sns.scatterplot(data=data, x=x, y=y, hue=hue, ax=ax, s=10, alpha=0.35, linewidth=0,
                    legend=False, palette=palette)
    edges = np.unique(np.round(np.logspace(0, np.log10(data[x].max()) + 1e-9, 12)))
    bins = pd.cut(data[x], np.append(edges, np.inf), right=False)
    medians = data.groupby([bins] + ([hue] if hue else []), observed=True).agg(
        x=(x, "median"), y=(y, "median")).reset_index()
    for key, part in (medians.groupby(hue, sort=False) if hue else [(None, medians)]):
        # the medians take their points' colour, so one legend entry per level says it all
        ax.plot(part["x"], part["y"], marker="o", lw=2, color=palette[key] if hue else None,
                label=f"{key} (median)" if hue else "median")
    x0 = data[x].min()
    y0 = data.loc[data[x] == x0, y].median()
    grid = np.logspace(np.log10(x0), np.log10(data[x].max()), 50)
    ax.plot(grid, y0 * (grid / x0) ** reference_slope, color="black", ls="--", lw=1,
            label=f"reference $n^{{{reference_slope:g}}}$")
    ax.set(xscale="log", yscale="log", xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def comparison(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None, title: str = "",
               xlabel: str = "", ylabel: str = "", seed: int = 0,
               reference: float | None = None, reference_label: str = "",
               order: list | None = None) -> Figure:
    """Bars of the mean of ``y`` per ``x`` (in ``order``, if given; and ``hue``) with seeded
    bootstrap 95% intervals, and an optional horizontal reference line.  Long category names
    are wrapped onto several lines."""
    _require(df, x, y, *(c for c in [hue] if c))
    fig = Figure()
    ax = fig.subplots()
    sns.barplot(data=df, x=x, y=y, hue=hue, errorbar=("ci", 95), seed=seed, ax=ax,
                capsize=0.1, err_kws={"linewidth": 1}, order=order)
    if reference is not None:
        ax.axhline(reference, color="black", ls="--", lw=1, label=reference_label or None)
    ax.set_xticks(ax.get_xticks(), [textwrap.fill(t.get_text(), WRAP)
                                    for t in ax.get_xticklabels()])
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    if hue or (reference is not None and reference_label):
        ax.legend(title=hue, fontsize="small")
    fig.tight_layout()
    return fig


def curves(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None, col: str | None = None,
           title: str = "", xlabel: str = "", ylabel: str = "", diagonal: bool = False,
           seed: int = 0, logx: bool = False, logy: bool = False,
           aggregate: bool = True) -> Figure:
    """Lines of ``y`` against ``x`` per ``hue``, one panel per value of ``col`` (log axes with
    ``logx``, ``logy``).

    With ``aggregate`` (the default), rows that share an ``x`` (seeds) are drawn as their mean
    with a seeded bootstrap 95% band; ``aggregate=False`` draws the points as given, in order
    (a ROC curve's vertical steps repeat ``x``).  ``diagonal`` adds the identity line."""
    _require(df, x, y, *(c for c in [hue, col] if c))
    panels = list(dict.fromkeys(df[col])) if col else [None]
    fig = Figure(figsize=(4.2 * len(panels), 4.2) if col else None)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        part = df if panel is None else df[df[col] == panel]
        how = dict(errorbar=("ci", 95), seed=seed) if aggregate else \
            dict(estimator=None, errorbar=None, sort=False)
        sns.lineplot(data=part, x=x, y=y, hue=hue, ax=ax, legend=i == 0 and bool(hue), **how)
        if diagonal:
            ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
        ax.set(xlabel=xlabel or x, ylabel=(ylabel or y) if i == 0 else "",
               title=str(panel) if col else title)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if i == 0 and (hue or diagonal):
            ax.legend(fontsize="small")
    if col and title:
        fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def power_laws(df: pd.DataFrame, x: str, y: str, *, hue: str, style: str | None = None,
               title: str = "", xlabel: str = "", ylabel: str = "",
               reference: float | None = None, reference_label: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes, one colour per ``hue`` and one marker per ``style``,
    each group with its least-squares power law ``y = a x^b`` drawn as a line and ``b`` in the
    legend, and an optional horizontal reference line (a threshold).  Non-positive values cannot
    be drawn on log axes and are left out."""
    _require(df, x, y, hue, *(c for c in [style] if c))
    data = df[(df[x] > 0) & (df[y] > 0)]
    if data.empty:
        raise ValueError("log-log plot needs positive values")
    fig = Figure()
    ax = fig.subplots()
    palette = dict(zip(data[hue].unique(), sns.color_palette(n_colors=data[hue].nunique())))
    sns.scatterplot(data=data, x=x, y=y, hue=hue, style=style, ax=ax, s=40, legend=False,
                    palette=palette)
    keys = [hue] + ([style] if style else [])
    dashes = ["-", "--", ":", "-."]
    styles = {s: dashes[i % len(dashes)] for i, s in enumerate(data[style].unique())} \
        if style else {}
    for key, part in data.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        if part[x].nunique() < 2:
            continue
        lx, ly = np.log(part[x].to_numpy(float)), np.log(part[y].to_numpy(float))
        slope, intercept = np.polyfit(lx, ly, 1)
        grid = np.linspace(lx.min(), lx.max(), 20)
        ax.plot(np.exp(grid), np.exp(intercept + slope * grid), color=palette[key[0]],
                ls=styles.get(key[-1], "-") if style else "-", lw=1.5,
                label=f"{', '.join(map(str, key))}: slope {slope:.2f}")
    if reference is not None:
        if not reference > 0:
            raise ValueError(f"a reference line on log axes must be positive, got {reference!r}")
        ax.axhline(reference, color="black", ls=":", lw=1, label=reference_label or None)
    ax.set(xscale="log", yscale="log", xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    if len(ax.get_legend_handles_labels()[1]) > 4:  # many fits: the legend goes beside the axes
        fig.set_size_inches(9.5, 4.8)
        ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def reliability(df: pd.DataFrame, confidence: str, accuracy: str, *, weight: str,
                col: str | None = None, hue: str | None = None, title: str = "",
                xlabel: str = "", ylabel: str = "") -> Figure:
    """Reliability diagrams: ``accuracy`` against ``confidence`` on [0, 1], one line per
    ``hue`` and one panel per value of ``col``, through points whose area grows linearly with
    ``weight`` (a bin's share of the data, on one scale across panels; the smallest stay
    visible), with the diagonal of perfect calibration."""
    _require(df, confidence, accuracy, weight, *(c for c in [hue, col] if c))
    panels = list(dict.fromkeys(df[col])) if col else [None]
    groups = list(dict.fromkeys(df[hue])) if hue else [None]
    colours = dict(zip(groups, sns.color_palette(n_colors=len(groups))))
    largest = df[weight].max()
    fig = Figure(figsize=(3.6 * len(panels), 3.9) if col else None)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        part = df if panel is None else df[df[col] == panel]
        ax.plot([0, 1], [0, 1], color="black", ls="--", lw=1, label="perfect calibration")
        for group in groups:
            rows = part if group is None else part[part[hue] == group]
            if rows.empty:
                continue
            rows = rows.sort_values(confidence)
            label = None if group is None else str(group)
            ax.plot(rows[confidence], rows[accuracy], color=colours[group], lw=1, alpha=0.8,
                    label=label)
            area = 8 + 240 * rows[weight] / largest if largest > 0 else 8
            ax.scatter(rows[confidence], rows[accuracy], s=area, color=colours[group],
                       alpha=0.7, linewidths=0)
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=xlabel or confidence,
               ylabel=(ylabel or accuracy) if i == 0 else "",
               title=str(panel) if col else title)
        if i == 0:
            ax.legend(loc="upper left", fontsize="small")
    if col and title:
        fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def pareto(df: pd.DataFrame, x: str, y: str, *, label: str, hue: str, title: str = "",
           xlabel: str = "", ylabel: str = "", logx: bool = True) -> Figure:
    """Quality ``y`` (higher is better) against cost ``x`` (lower is better): one labelled point
    per row, coloured by ``hue``, and the Pareto frontier - the rows that no other row beats on
    both - as a step line."""
    _require(df, x, y, label, hue)
    fig = Figure()
    ax = fig.subplots()
    sns.scatterplot(data=df, x=x, y=y, hue=hue, style=hue, s=70, ax=ax)
    # labels alternate above and below their points, so neighbours in cost do not overprint
    for i, row in enumerate(df.sort_values(x).itertuples(index=False)):
        ax.annotate(str(getattr(row, label)), (getattr(row, x), getattr(row, y)),
                    xytext=(5, 4 if i % 2 == 0 else -11), textcoords="offset points",
                    fontsize="x-small")
    ordered = df.sort_values([x, y], ascending=[True, False])
    front = ordered[ordered[y] > ordered[y].cummax().shift(fill_value=-np.inf)]
    ax.step(front[x], front[y], where="post", color="grey", lw=1, ls="--",
            label="Pareto frontier")
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


#: Verdict colours (Okabe and Ito's colour-blind-safe palette) and symbols: every tile also
#: carries its symbol, and the legend the words, so colour is never the only signal.
VERDICT_STYLE = {"SUPPORTED": ("#0072B2", "white", "\N{CHECK MARK}"),
                 "REFUTED": ("#D55E00", "white", "\N{BALLOT X}"),
                 "INCONCLUSIVE": ("#F0E442", "black", "?")}
UNTESTED_STYLE = ("white", "#555555", "\N{EM DASH}")


def verdict_tiles(df: pd.DataFrame, *, title: str = "") -> Figure:
    """One tile per claim and round: a row of tiles per ``group`` (in order of appearance), the
    round-1 claim above, its refinements below it (``round``), ``column`` within the group;
    each tile coloured by ``verdict`` (:data:`VERDICT_STYLE`) and labelled with its ``id`` and
    the verdict's symbol, with a legend of the words."""
    _require(df, "group", "column", "round", "id", "verdict")
    groups = list(dict.fromkeys(df["group"]))
    width = int(df["column"].max()) + 1
    depth = int(df["round"].max())
    label_room = 3.4  # tile widths left of the tiles for the group names
    fig = Figure(figsize=(0.62 * (width + label_room + 1.2) + 0.2,
                          0.62 * (depth + 0.6) * len(groups) + 1.0))
    ax = fig.subplots()
    for g, group in enumerate(groups):
        top = g * (depth + 0.6)
        ax.text(-0.2, top + depth / 2, group, ha="right", va="center", fontsize=10,
                fontweight="bold")
        if g == 0:  # which row is which round, once
            for level in range(1, depth + 1):
                ax.text(width + 0.15, top + level - 0.5, f"round {level}", ha="left",
                        va="center", fontsize=8, color="#333333")
        for row in df[df["group"] == group].itertuples(index=False):
            face, ink, symbol = VERDICT_STYLE.get(row.verdict, UNTESTED_STYLE)
            y = top + row.round - 1
            ax.add_patch(mpl_patches.FancyBboxPatch(
                (row.column + 0.05, y + 0.05), 0.9, 0.9, boxstyle="round,pad=0,rounding_size=0.1",
                facecolor=face, edgecolor="#333333", linewidth=0.8))
            ax.text(row.column + 0.5, y + 0.5, f"{row.id}\n{symbol}", ha="center",
                    va="center", color=ink, fontsize=8, fontweight="bold", linespacing=1.1)
    ax.set_xlim(-label_room, width + 1.3)
    ax.set_ylim(len(groups) * (depth + 0.6) - 0.5, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    handles = [mpl_patches.Patch(facecolor=face, edgecolor="#333333", label=f"{symbol} {word}")
               for word, (face, _, symbol) in VERDICT_STYLE.items()]
    if (~df["verdict"].isin(list(VERDICT_STYLE))).any():
        face, _, symbol = UNTESTED_STYLE
        handles.append(mpl_patches.Patch(facecolor=face, edgecolor="#333333",
                                         label=f"{symbol} not yet tested"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02),
              ncol=2, frameon=False, fontsize=9)
    if title:
        ax.set_title(title, fontweight="bold")
    fig.tight_layout()
    return fig
