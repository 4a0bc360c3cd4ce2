"""One seaborn theme and the book's figure helpers.

Each helper takes a tidy data frame and column names and returns a matplotlib ``Figure``; it
imports nothing else from the package.  Figures are built without pyplot, so nothing is shown
unless a chapter displays or glues it.  Chapters ``glue`` the figures into their prose.

Every helper follows the same rules, so that a reader can tell the series apart on a screen,
on paper and without colour vision:

* colours come from Okabe and Ito's colour-blind-safe palette (:data:`OKABE_ITO`), and every
  series also has its own marker and line style (:func:`series_styles`), so colour is never
  the only cue; ordered values (a count, a round) use a sequential colour map, whose
  lightness orders them;
* the legend never covers data: it sits below the axes, or in the empty cell of a grid of
  panels;
* a figure is at most :data:`MAX_WIDTH` inches wide - the book's column at 100 dpi - so it is
  shown at full size, and several panels wrap onto rows rather than shrink their fonts.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib.patches as mpl_patches
import matplotlib.ticker as mpl_ticker
import matplotlib.transforms as mpl_transforms
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: Okabe and Ito's colour-blind-safe colours, in the order the book gives them to series:
#: blue and vermillion first (told apart by every kind of colour vision), the yellow last.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000",
             "#F0E442")

#: Markers and line styles of the series, in order (see :func:`series_styles`).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 3)),
              (0, (3, 1, 1, 1, 1, 1, 1, 1)))

#: Line styles of horizontal reference lines (black), in order.
REFERENCE_STYLES = ("--", ":", "-.", (0, (1, 1)))

#: Bar hatches of the hue levels of :func:`comparison`, in order.
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")

#: The sequential colour map of ordered values (counts, rounds): viridis, whose lightness
#: rises steadily, so the order reads without colour too.
PALETTE = "viridis"

#: The widest figure, in inches: the book's column is about 730 pixels, shown at 100 dpi.
MAX_WIDTH = 7.2

#: Size of a one-panel figure, in inches, before the rows of a legend below it.
SINGLE = (6.4, 4.2)

#: Characters per line of a wrapped category label.
WRAP = 14

#: Colour of reference lines, frontiers and edges: not a series colour.
INK = "#333333"


def set_theme() -> None:
    """The book's look: seaborn's whitegrid, Okabe and Ito's palette, a readable context
    (fonts of 11-12 points at the figure's own size), fixed figure size and DPI."""
    sns.set_theme(context="notebook", style="whitegrid", palette=list(OKABE_ITO),
                  rc={"figure.figsize": SINGLE, "figure.dpi": 100, "savefig.dpi": 100,
                      "axes.titleweight": "bold", "legend.fontsize": 10,
                      "legend.title_fontsize": 10})


def series_styles(levels) -> dict:
    """Colour, marker and line style of each level, in the order given:
    ``{level: {"color": ..., "marker": ..., "linestyle": ...}}``.

    The first eight levels differ in all three; no two of the first forty share all three.
    Helpers draw every series with its style, so a chapter that adds a series to a figure can
    match it."""
    levels = list(dict.fromkeys(levels))
    return {level: {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)],
                    "linestyle": LINESTYLES[i % len(LINESTYLES)]}
            for i, level in enumerate(levels)}


def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.empty:
        raise ValueError("cannot plot an empty data frame")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"data frame lacks column(s) {', '.join(missing)}")


def _levels(df: pd.DataFrame, column: str | None) -> list:
    """The values of ``column`` in their order: a categorical column's categories that occur,
    else the order of first appearance; ``[None]`` without a column."""
    if column is None:
        return [None]
    values = df[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return list(dict.fromkeys(values.dropna()))


def _handle(style: dict, *, line: bool = True, filled: bool = True, **extra) -> Line2D:
    """A legend handle that shows a series' colour, marker and (with ``line``) line style."""
    return Line2D([], [], color=style["color"], marker=style["marker"],
                  linestyle=style["linestyle"] if line else "none",
                  markerfacecolor=style["color"] if filled else "white", markersize=7,
                  **extra)


def _legend_columns(labels, width: float) -> int:
    """How many legend columns of these labels fit across ``width`` inches."""
    longest = max(len(line) for label in labels for line in str(label).splitlines())
    column = 0.075 * longest + 0.7  # about 5.5 points a character at 10 points, and a handle
    return max(1, min(len(labels), int(width // column)))


def _legend(fig: Figure, handles, labels, *, spare=None, title: str | None = None,
            ncols: int | None = None):
    """The figure's one legend, off the data: centred in ``spare`` (the empty cell of a grid,
    as ``(axes above it, axes left of it)``) if there is one, else below every axes."""
    if not handles:
        return None
    if spare is not None:
        above, left = spare
        where = mpl_transforms.blended_transform_factory(above.transAxes, left.transAxes)
        return fig.legend(handles, labels, loc="center", bbox_to_anchor=(0.5, 0.5),
                          bbox_transform=where, title=title, frameon=False)
    ncols = ncols or _legend_columns(labels, fig.get_figwidth() - 0.3)
    return fig.legend(handles, labels, loc="outside lower center", ncols=ncols, title=title,
                      frameon=False)


def _legend_height(n_entries: int, ncols: int = 1) -> float:
    """Inches a legend of ``n_entries`` in ``ncols`` columns takes below the axes."""
    return 0.15 + 0.24 * math.ceil(n_entries / max(1, ncols))


def _grid(n: int, *, ncols: int = 2, row_height: float = 3.1, extra_height: float = 0.0,
          sharex: bool = False, sharey: bool = False):
    """``n`` panels in rows of at most ``ncols``: ``(figure, axes, spare)``; ``spare`` is
    ``(axes above, axes left)`` of the first empty cell, or None when the grid is full.  One
    panel gets the book's single-figure size."""
    cols = max(1, min(n, ncols))
    rows = math.ceil(n / cols)
    if n == 1:
        size = (SINGLE[0], SINGLE[1] + extra_height)
    else:
        size = (MAX_WIDTH, row_height * rows + extra_height + (0.3 if rows > 1 else 0.0))
    fig = Figure(figsize=size, layout="constrained")
    spec = fig.add_gridspec(rows, cols)
    axes = []
    for i in range(n):
        share = dict(sharex=axes[0] if sharex and axes else None,
                     sharey=axes[0] if sharey and axes else None)
        axes.append(fig.add_subplot(spec[i // cols, i % cols], **share))
    spare = None
    if n < rows * cols:
        spare = (axes[n - cols], axes[n - 1] if n % cols else axes[n - cols])
    return fig, axes, spare


def _plain_number(value: float) -> str:
    """A tick label without powers of ten where plain digits read better."""
    if value <= 0:
        return ""
    if 1e-3 <= value < 1e5:
        return f"{value:g}"
    return f"$10^{{{np.log10(value):.0f}}}$" if np.isclose(np.log10(value) % 1, 0) \
        else f"{value:.0e}"


def _plain_log_ticks(axis) -> None:
    """Log-axis ticks in plain numbers (``0.5``, ``2``, ``100``, not ``2x10^0``); over less
    than about a decade the 2s, 3s and 5s between the powers of ten are labelled too, and
    over less than a third of a decade every minor tick."""
    def minor(value, _):
        low, high = sorted(axis.get_view_interval())
        if low <= 0 or value <= 0:
            return ""
        span = np.log10(high / low)
        mantissa = round(value / 10 ** np.floor(np.log10(value) + 1e-9), 6)
        if span <= 0.35 or (span <= 1.3 and mantissa in (2, 3, 5)):
            return _plain_number(value)
        return ""

    axis.set_major_formatter(mpl_ticker.FuncFormatter(lambda v, _: _plain_number(v)))
    axis.set_minor_formatter(mpl_ticker.FuncFormatter(minor))


def _log_axes(ax, *, logx: bool = False, logy: bool = False) -> None:
    if logx:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
    if logy:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)


def _title(fig: Figure, axes, title: str, panels) -> None:
    if len(axes) == 1 and panels[0] is None:
        axes[0].set_title(title)
        return
    for ax, panel in zip(axes, panels):
        ax.set_title(str(panel))
    if title:
        fig.suptitle(title, fontweight="bold")


def agreement(df: pd.DataFrame, x: str, y: str, hue: str, *, title: str = "",
              xlabel: str = "", ylabel: str = "") -> Figure:
    """Scatter of ``y`` against ``x`` on [0, 1] with the identity line, coloured (and sized) by
    log ``hue``; points with the largest ``hue`` are drawn on top."""
    _require(df, x, y, hue)
    df = df.sort_values(hue)  # the best-supported points are drawn last, on top
    fig = Figure(figsize=(SINGLE[0], SINGLE[1] + _legend_height(1)), layout="constrained")
    ax = fig.subplots()
    size = 6 + 6 * np.log10(df[hue].clip(lower=1))
    points = ax.scatter(df[x], df[y], c=df[hue], cmap=PALETTE, norm=LogNorm(), s=size,
                        alpha=0.7, linewidths=0)
    (identity,) = ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="identity")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=xlabel or x, ylabel=ylabel or y,
           title=title)
    fig.colorbar(points, ax=ax, label=hue)
    _legend(fig, [identity], ["identity"])
    return fig


def _binned_medians(data: pd.DataFrame, x: str, y: str, by: list[str]) -> pd.DataFrame:
    """Medians of ``x`` and ``y`` per log-spaced bin of ``x`` (and per ``by``)."""
    edges = np.unique(np.round(np.logspace(0, np.log10(data[x].max()) + 1e-9, 12)))
    bins = pd.cut(data[x], np.append(edges, np.inf), right=False)
    return data.groupby([bins] + by, observed=True).agg(
        x=(x, "median"), y=(y, "median")).reset_index()


def _reference_law(ax, data: pd.DataFrame, x: str, y: str, slope: float):
    """The line ``x^slope`` through the median of ``y`` at the smallest ``x``."""
    x0 = data[x].min()
    y0 = data.loc[data[x] == x0, y].median()
    grid = np.logspace(np.log10(x0), np.log10(data[x].max()), 50)
    (line,) = ax.plot(grid, y0 * (grid / x0) ** slope, color="black", ls="--", lw=1,
                      label=f"reference $n^{{{slope:g}}}$")
    return line


def _positive(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    data = df[(df[x] > 0) & (df[y] > 0)]
    if data.empty:
        raise ValueError("log-log plot needs positive values")
    return data


def loglog_decay(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None,
                 reference_slope: float = -0.5, title: str = "", xlabel: str = "",
                 ylabel: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes: points, binned medians and a ``x^slope`` reference.

    Each ``hue`` level has its colour, marker and line style (points and medians alike).  The
    reference line passes through the median of ``y`` at the smallest ``x``.
    """
    _require(df, x, y, *(c for c in [hue] if c))
    data = _positive(df, x, y)
    levels = _levels(data, hue)
    styles = series_styles(levels)
    n_entries = len(levels) + 1
    fig = Figure(figsize=(SINGLE[0], SINGLE[1] + _legend_height(n_entries, 2)),
                 layout="constrained")
    ax = fig.subplots()
    for level in levels:
        rows = data if level is None else data[data[hue] == level]
        ax.scatter(rows[x], rows[y], s=14, alpha=0.35, linewidths=0,
                   color=styles[level]["color"], marker=styles[level]["marker"])
    medians = _binned_medians(data, x, y, [hue] if hue else [])
    handles, labels = [], []
    for level in levels:
        part = medians if level is None else medians[medians[hue] == level]
        label = "median" if level is None else f"{level} (median)"
        ax.plot(part["x"], part["y"], lw=2, markersize=6, label=label, **styles[level])
        handles.append(_handle(styles[level]))
        labels.append(label)
    handles.append(_reference_law(ax, data, x, y, reference_slope))
    labels.append(handles[-1].get_label())
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    _log_axes(ax, logx=True, logy=True)
    _legend(fig, handles, labels, ncols=2 if n_entries > 2 else None)
    return fig


def loglog_stages(df: pd.DataFrame, x: str, y: str, *, stage: str, col: str | None = None,
                  reference_slope: float = -0.5, title: str = "", xlabel: str = "",
                  ylabel: str = "", stage_label: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes when the points come in ordered ``stage``s (the
    refits of a posterior, say): points coloured by their stage on the sequential
    :data:`PALETTE` (with a colour bar), one line of binned medians per stage in its colour,
    an ``x^slope`` reference through the median of ``y`` at the smallest ``x``, and one panel
    per value of ``col``, stacked.  The first and last stage's median lines are labelled at
    their ends."""
    _require(df, x, y, stage, *(c for c in [col] if c))
    data = _positive(df, x, y)
    if not pd.api.types.is_numeric_dtype(data[stage]):
        raise TypeError(f"stage column {stage!r} must be numeric (it is ordered)")
    panels = _levels(data, col)
    fig, axes, _ = _grid(len(panels), ncols=1, row_height=3.3,
                         extra_height=_legend_height(1) + (0.3 if title else 0))
    if len(panels) == 1:
        fig.set_size_inches(MAX_WIDTH, SINGLE[1] + _legend_height(1))
    norm = Normalize(data[stage].min(), data[stage].max())
    cmap = sns.color_palette(PALETTE, as_cmap=True)
    reference = None
    for ax, panel in zip(axes, panels):
        part = data if panel is None else data[data[col] == panel]
        ax.scatter(part[x], part[y], c=part[stage], cmap=cmap, norm=norm, s=12, alpha=0.45,
                   linewidths=0)
        medians = _binned_medians(part, x, y, [stage])
        stages = sorted(medians[stage].unique())
        for value in stages:
            line = medians[medians[stage] == value].sort_values("x")
            ax.plot(line["x"], line["y"], color=cmap(norm(value)), lw=1.6, marker="o",
                    markersize=3.5, label=f"{stage} {value:g} (median)")
            if value in (stages[0], stages[-1]) and len(stages) > 1:
                ax.annotate(f"{value:g}", (line["x"].iloc[-1], line["y"].iloc[-1]),
                            xytext=(4, 0), textcoords="offset points", va="center",
                            fontsize=9, color=INK)
        reference = _reference_law(ax, part, x, y, reference_slope)
        ax.set(xlabel=xlabel or x, ylabel=ylabel or y)
        _log_axes(ax, logx=True, logy=True)
    _title(fig, axes, title, panels)
    bar = fig.colorbar(_mappable(cmap, norm), ax=axes, label=stage_label or stage,
                       aspect=30 * len(axes))
    bar.ax.tick_params(labelsize=9)
    _legend(fig, [Line2D([], [], color=INK, lw=1.6, marker="o", markersize=3.5), reference],
            ["binned medians of one stage, in its colour", reference.get_label()], ncols=2)
    return fig


def _mappable(cmap, norm):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


def comparison(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None, title: str = "",
               xlabel: str = "", ylabel: str = "", seed: int = 0,
               reference: float | None = None, reference_label: str = "",
               order: list | None = None) -> Figure:
    """Bars of the mean of ``y`` per ``x`` (in ``order``, if given; and ``hue``) with seeded
    bootstrap 95% intervals, and an optional horizontal reference line.  Each ``hue`` level has
    its colour and its hatch.  Long category names are wrapped onto several lines."""
    _require(df, x, y, *(c for c in [hue] if c))
    levels = _levels(df, hue)
    styles = series_styles(levels)
    n_entries = (len(levels) if hue else 0) + bool(reference is not None and reference_label)
    fig = Figure(figsize=(SINGLE[0], SINGLE[1] + (_legend_height(n_entries, 2)
                                                 if n_entries else 0)),
                 layout="constrained")
    ax = fig.subplots()
    palette = {level: styles[level]["color"] for level in levels} if hue else None
    sns.barplot(data=df, x=x, y=y, hue=hue, errorbar=("ci", 95), seed=seed, ax=ax,
                capsize=0.1, err_kws={"linewidth": 1, "color": INK}, order=order,
                hue_order=levels if hue else None, palette=palette, legend=False,
                color=None if hue else OKABE_ITO[0], edgecolor=INK, linewidth=0.8)
    handles, labels = [], []
    for i, (level, container) in enumerate(zip(levels, ax.containers)):
        for bar in container:
            bar.set_hatch(HATCHES[i % len(HATCHES)])
        if hue:
            handles.append(mpl_patches.Patch(facecolor=styles[level]["color"], edgecolor=INK,
                                             hatch=HATCHES[i % len(HATCHES)]))
            labels.append(str(level))
    if reference is not None:
        line = ax.axhline(reference, color="black", ls="--", lw=1,
                          label=reference_label or None)
        if reference_label:
            handles.append(line)
            labels.append(reference_label)
    ax.set_xticks(ax.get_xticks(), [textwrap.fill(t.get_text(), WRAP)
                                    for t in ax.get_xticklabels()])
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    _legend(fig, handles, labels, title=hue, ncols=min(len(labels), 3) if labels else None)
    return fig


def _markevery(n_points: int) -> int:
    """Every how many points a line carries its marker: about a dozen markers a line."""
    return max(1, round(n_points / 12))


def curves(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None, col: str | None = None,
           title: str = "", xlabel: str = "", ylabel: str = "", diagonal: bool = False,
           seed: int = 0, logx: bool = False, logy: bool = False, aggregate: bool = True,
           interval: tuple[str, str] | None = None, ncols: int = 2, sharey: bool = False,
           references: dict[str, float] | None = None) -> Figure:
    """Lines of ``y`` against ``x`` per ``hue``, one panel per value of ``col`` (log axes with
    ``logx``, ``logy``), each ``hue`` level with its colour, marker and line style.

    With ``aggregate`` (the default), rows that share an ``x`` (seeds) are drawn as their mean
    with a seeded bootstrap 95% band; ``aggregate=False`` draws the points as given, in order
    (a ROC curve's vertical steps repeat ``x``); ``interval`` names two columns, ``(low,
    high)``, of a band computed beforehand, drawn around ``y`` as given.  ``diagonal`` adds
    the identity line; ``references`` maps labels to the heights of horizontal lines (black,
    one line style each) drawn in every panel and named in the legend.
    Panels wrap onto rows of ``ncols``; the legend sits in the grid's empty cell, if any, else
    below the panels."""
    columns = [c for c in [hue, col] if c] + (list(interval) if interval else [])
    _require(df, x, y, *columns)
    panels = _levels(df, col)
    levels = _levels(df, hue)
    styles = series_styles(levels)
    references = dict(references or {})
    n_entries = (len(levels) if hue else 0) + diagonal + len(references)
    legend_cols = _legend_columns([str(v) for v in levels] + ["chance"], MAX_WIDTH - 0.3)
    fig, axes, spare = _grid(len(panels), ncols=ncols, sharey=sharey,
                             extra_height=_legend_height(n_entries, legend_cols)
                             if n_entries else 0)
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        part = df if panel is None else df[df[col] == panel]
        for level in levels:
            rows = part if level is None else part[part[hue] == level]
            if rows.empty:
                continue
            _curve(ax, rows, x, y, styles[level], label=None if level is None else str(level),
                   aggregate=aggregate, interval=interval, seed=seed)
        if diagonal:
            ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
        for (name, height), dash in zip(references.items(), REFERENCE_STYLES):
            ax.axhline(height, color="black", ls=dash, lw=1, label=name)
        ax.set(xlabel=xlabel or x, ylabel=(ylabel or y) if i % ncols == 0 else "")
        _log_axes(ax, logx=logx, logy=logy)
    _title(fig, axes, title, panels)
    handles = [_handle(styles[level]) for level in levels] if hue else []
    labels = [str(level) for level in levels] if hue else []
    if diagonal:
        handles.append(Line2D([], [], color="grey", ls=":", lw=1))
        labels.append("chance")
    for name, dash in zip(references, REFERENCE_STYLES):
        handles.append(Line2D([], [], color="black", ls=dash, lw=1))
        labels.append(name)
    _legend(fig, handles, labels, spare=spare)
    return fig


def _curve(ax, rows: pd.DataFrame, x: str, y: str, style: dict, *, label, aggregate: bool,
           interval, seed: int) -> None:
    """One series of :func:`curves`."""
    if interval:
        rows = rows.sort_values(x)
        ax.fill_between(rows[x], rows[interval[0]], rows[interval[1]], color=style["color"],
                        alpha=0.2, linewidth=0)
        ax.plot(rows[x], rows[y], markevery=_markevery(len(rows)), label=label, markersize=6,
                **style)
        return
    how = dict(errorbar=("ci", 95), seed=seed) if aggregate else \
        dict(estimator=None, errorbar=None, sort=False)
    n_points = rows[x].nunique() if aggregate else len(rows)
    sns.lineplot(data=rows, x=x, y=y, ax=ax, legend=False, label=label, markersize=6,
                 markevery=_markevery(n_points), **style, **how)


def power_laws(df: pd.DataFrame, x: str, y: str, *, hue: str, style: str | None = None,
               title: str = "", xlabel: str = "", ylabel: str = "",
               reference: float | None = None, reference_label: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes, each group of ``hue`` (and ``style``) with its
    least-squares power law ``y = a x^b`` drawn as a line, and an optional horizontal
    reference line (a threshold).  Non-positive values cannot be drawn on log axes and are left
    out.

    Each ``hue`` level has its colour and marker; each ``style`` level its line style, and its
    markers filled (odd levels: first, third, ...) or open (even levels).  The legend, below
    the axes, has a column per ``style`` level headed by its look, and names every group with
    its slope ``b`` - or says that it was measured at one ``x`` only, too few for a fit.  The
    fitted lines are labelled ``"<hue>, <style>: slope b"`` (``"<hue>: slope b"``)."""
    _require(df, x, y, hue, *(c for c in [style] if c))
    data = _positive(df, x, y)
    if reference is not None and not reference > 0:
        raise ValueError(f"a reference line on log axes must be positive, got {reference!r}")
    hues, kinds = _levels(data, hue), _levels(data, style)
    colours = series_styles(hues)
    dashes = {kind: LINESTYLES[i % len(LINESTYLES)] for i, kind in enumerate(kinds)}
    filled = {kind: i % 2 == 0 for i, kind in enumerate(kinds)}
    groups = {kind: [] for kind in kinds}  # per style: (hue level, rows)
    for kind in kinds:
        rows = data if kind is None else data[data[style] == kind]
        groups[kind] = [(h, rows[rows[hue] == h]) for h in hues if (rows[hue] == h).any()]
    depth = max(len(g) for g in groups.values()) + (style is not None)
    n_rows = depth + bool(reference is not None and reference_label)
    fig = Figure(figsize=(SINGLE[0] if style is None else MAX_WIDTH,
                          SINGLE[1] + _legend_height(n_rows + 1)), layout="constrained")
    ax = fig.subplots()
    handles, labels = [], []
    for kind in kinds:  # one legend column per style: its key, then its groups
        column = [(Line2D([], [], color=INK, ls=dashes[kind], marker="o",
                          markerfacecolor=INK if filled[kind] else "white"), f"{kind}:")] \
            if style is not None else []
        for h, part in groups[kind]:
            look = dict(colours[h], linestyle=dashes[kind])
            ax.scatter(part[x], part[y], s=40, marker=look["marker"], edgecolors=look["color"],
                       facecolors=look["color"] if filled[kind] else "white",
                       linewidths=1.2, zorder=3)
            if part[x].nunique() < 2:
                column.append((_handle(look, filled=filled[kind]), f"{h}: one {x}, no fit"))
                continue
            lx, ly = np.log(part[x].to_numpy(float)), np.log(part[y].to_numpy(float))
            slope, intercept = np.polyfit(lx, ly, 1)
            grid = np.linspace(lx.min(), lx.max(), 20)
            key = str(h) if kind is None else f"{h}, {kind}"
            ax.plot(np.exp(grid), np.exp(intercept + slope * grid), color=look["color"],
                    ls=look["linestyle"], lw=1.5, label=f"{key}: slope {slope:.2f}")
            column.append((_handle(look, filled=filled[kind]), f"{h}: {slope:.2f}"))
        column += [(Line2D([], [], alpha=0), "")] * (depth - len(column))
        handles += [handle for handle, _ in column]
        labels += [label for _, label in column]
        if reference is not None and reference_label:  # the threshold ends the first column
            handles.append(Line2D([], [], color="black", ls=":", lw=1) if kind == kinds[0]
                           else Line2D([], [], alpha=0))
            labels.append(reference_label if kind == kinds[0] else "")
    if reference is not None:
        ax.axhline(reference, color="black", ls=":", lw=1, label=reference_label or None)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    _log_axes(ax, logx=True, logy=True)
    _legend(fig, handles, labels, ncols=len(kinds),
            title="slope b of the fitted power law y = a x^b")
    return fig


def reliability(df: pd.DataFrame, confidence: str, accuracy: str, *, weight: str,
                col: str | None = None, hue: str | None = None, title: str = "",
                xlabel: str = "", ylabel: str = "") -> Figure:
    """Reliability diagrams: ``accuracy`` against ``confidence`` on [0, 1], one line per
    ``hue`` (its colour, marker and line style) and one panel per value of ``col`` (in rows of
    two), through points whose area grows linearly with ``weight`` (a bin's share of the data,
    on one scale across panels; the smallest stay visible), with the diagonal of perfect
    calibration."""
    _require(df, confidence, accuracy, weight, *(c for c in [hue, col] if c))
    panels = _levels(df, col)
    groups = _levels(df, hue)
    styles = series_styles(groups)
    largest = df[weight].max()
    fig, axes, spare = _grid(len(panels), row_height=3.4, sharey=True,
                             extra_height=_legend_height(len(groups) + 1, 3))
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        part = df if panel is None else df[df[col] == panel]
        ax.plot([0, 1], [0, 1], color="black", ls="--", lw=1, label="perfect calibration")
        for group in groups:
            rows = part if group is None else part[part[hue] == group]
            if rows.empty:
                continue
            rows = rows.sort_values(confidence)
            label = None if group is None else str(group)
            ax.plot(rows[confidence], rows[accuracy], color=styles[group]["color"], lw=1.2,
                    alpha=0.9, ls=styles[group]["linestyle"], label=label)
            area = 8 + 240 * rows[weight] / largest if largest > 0 else 8
            ax.scatter(rows[confidence], rows[accuracy], s=area, color=styles[group]["color"],
                       marker=styles[group]["marker"], alpha=0.7, linewidths=0)
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=xlabel or confidence,
               ylabel=(ylabel or accuracy) if i % 2 == 0 else "")
    _title(fig, axes, title, panels)
    handles = [Line2D([], [], color="black", ls="--", lw=1)]
    labels = ["perfect calibration"]
    if hue:
        handles += [_handle(styles[group]) for group in groups]
        labels += [str(group) for group in groups]
    _legend(fig, handles, labels, spare=spare)
    return fig


def _frontier(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows that no other row beats on both ``x`` (lower) and ``y`` (higher), by ``x``."""
    ordered = df.sort_values([x, y], ascending=[True, False])
    return ordered[ordered[y] > ordered[y].cummax().shift(fill_value=-np.inf)]


def _place_labels(fig: Figure, ax, texts) -> None:
    """Move each point label to the first of a few offsets around its point where it overlaps
    no label placed before it and no point (labels are placed in the order given)."""
    FigureCanvasAgg(fig)  # a renderer, to measure the texts
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    points = [ax.transData.transform(t.xy) for t in texts]
    taken = []
    offsets = [(6, 5, "left", "bottom"), (6, -5, "left", "top"), (-6, 5, "right", "bottom"),
               (-6, -5, "right", "top"), (0, 9, "center", "bottom"),
               (0, -9, "center", "top"), (8, 16, "left", "bottom"),
               (8, -16, "left", "top")]
    for text in texts:
        for dx, dy, ha, va in offsets:
            text.set(ha=ha, va=va)
            text.xyann = (dx, dy)
            box = text.get_window_extent(renderer).expanded(1.05, 1.15)
            clear = not any(box.overlaps(other) for other in taken) and not any(
                box.contains(*p) for p in points)
            if clear:
                break
        else:  # nowhere clear: the first place
            dx, dy, ha, va = offsets[0]
            text.set(ha=ha, va=va)
            text.xyann = (dx, dy)
            box = text.get_window_extent(renderer)
        taken.append(box)


def pareto(df: pd.DataFrame, x: str, y: str, *, label: str, hue: str, title: str = "",
           xlabel: str = "", ylabel: str = "", logx: bool = False,
           region: tuple[float, float, float, float] | None = None,
           region_label: str = "") -> Figure:
    """Quality ``y`` (higher is better) against cost ``x`` (lower is better): one labelled point
    per row, with the colour and marker of its ``hue``, and the Pareto frontier - the rows that
    no other row beats on both - as a dashed step line through rings around its points (one
    ring when one row beats all others).  ``region``, ``(x0, x1, y0, y1)``, shades and hatches
    the rectangle where a rule would hold (named by ``region_label`` in the legend).  Labels
    are placed where they overlap neither each other nor a point, if they can be."""
    _require(df, x, y, label, hue)
    levels = _levels(df, hue)
    styles = series_styles(levels)
    n_entries = len(levels) + 1 + bool(region is not None and region_label)
    fig = Figure(figsize=(SINGLE[0], SINGLE[1] + _legend_height(n_entries, 3)),
                 layout="constrained")
    ax = fig.subplots()
    handles, labels = [], []
    if region is not None:
        x0, x1, y0, y1 = region
        ax.add_patch(mpl_patches.Rectangle(
            (x0, y0), x1 - x0, y1 - y0, facecolor=OKABE_ITO[2], alpha=0.15,
            edgecolor=OKABE_ITO[2], hatch="//", linewidth=1, label=region_label or None,
            zorder=0))
        if region_label:
            handles.append(mpl_patches.Patch(facecolor=OKABE_ITO[2], alpha=0.3, hatch="//",
                                             edgecolor=OKABE_ITO[2]))
            labels.append(region_label)
    for level in levels:
        rows = df[df[hue] == level]
        ax.scatter(rows[x], rows[y], s=70, color=styles[level]["color"],
                   marker=styles[level]["marker"], edgecolors="white", linewidths=0.6,
                   zorder=3, label=str(level))
        handles.append(_handle(styles[level], line=False))
        labels.append(str(level))
    front = _frontier(df, x, y)
    (line,) = ax.step(front[x], front[y], where="post", color=INK, lw=1.5, ls="--",
                      marker="o", markersize=14, markerfacecolor="none", markeredgewidth=1.2,
                      label="Pareto frontier", zorder=2)
    handles.append(line)
    labels.append("Pareto frontier")
    _log_axes(ax, logx=logx)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    if region is not None:  # the whole region in view
        ax.update_datalim([(region[0], region[2]), (region[1], region[3])])
        ax.autoscale_view()
    texts = [ax.annotate(str(getattr(row, label)), (getattr(row, x), getattr(row, y)),
                         xytext=(6, 5), textcoords="offset points", fontsize=10, zorder=4)
             for row in df.sort_values([x, y]).itertuples(index=False)]
    _legend(fig, handles, labels, ncols=min(len(labels), 3))
    _place_labels(fig, ax, texts)
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
