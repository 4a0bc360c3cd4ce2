"""One seaborn theme and the book's figure helpers.

Each helper takes a tidy data frame and column names and returns a matplotlib
``Figure``; it imports nothing else from the package.  Figures are built without
pyplot, so nothing is shown unless a chapter displays or glues it.  Chapters ``glue``
the figures into their prose.

Every helper keeps the same rules, so that a reader can tell the series apart on a
screen, on paper and without colour vision:

* colours come from Okabe and Ito's colour-blind-safe palette (:data:`OKABE_ITO`), and
  every series also has its own marker and line style (:func:`series_styles`) - or bar
  hatch - so colour is never the only cue; ordered values (a count, a round) take a
  sequential colour map whose lightness orders them;
* the one legend of a figure never covers data: it sits below the axes, or in the empty
  cell of a grid of panels;
* a figure is at most :data:`MAX_WIDTH` inches wide - the book's column at 100 dpi -
  so it is shown at its own size, fonts of 9 points and more; several panels wrap onto
  rows rather than shrink, and an axis label too long for its axes is wrapped.
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
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: Okabe and Ito's colour-blind-safe colours, in the order the book gives them to
#: series: blue and vermillion first (told apart by every kind of colour vision), the
#: yellow, hard to see on white, last.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00",
             "#000000", "#F0E442")

#: Markers and line styles of the series, in order (see :func:`series_styles`).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 3)),
              (0, (3, 1, 1, 1, 1, 1, 1, 1)))

#: Line styles of horizontal reference lines (black), in order.
REFERENCE_STYLES = ("--", ":", "-.", (0, (1, 1)))

#: Bar hatches of the hue levels of :func:`comparison`, in order.
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")

#: The sequential colour map of ordered values (counts, rounds): viridis, whose
#: lightness rises steadily, so the order reads without colour too.
PALETTE = "viridis"

#: The widest figure, in inches: the book's column is about 730 pixels, at 100 dpi.
MAX_WIDTH = 7.2

#: Size of a one-panel figure, in inches, before the rows of a legend below it.
SINGLE = (6.4, 4.2)

#: Characters per line of a wrapped category label.
WRAP = 14

#: Characters per line of a point label of :func:`pareto`.
LABEL_WRAP = 20

#: Where :func:`pareto` tries a point's label, in order: offset in points, alignment.
LABEL_OFFSETS = ((6, 5, "left", "bottom"), (6, -5, "left", "top"),
                 (-6, 5, "right", "bottom"), (-6, -5, "right", "top"),
                 (0, 9, "center", "bottom"), (0, -9, "center", "top"),
                 (8, 14, "left", "bottom"), (8, -14, "left", "top"),
                 (-8, 14, "right", "bottom"), (-8, -14, "right", "top"))

#: Colour of frontiers, edges and notes: not a series colour.
INK = "#333333"


def set_theme() -> None:
    """The book's look: seaborn's whitegrid, Okabe and Ito's palette, a readable context
    (fonts of 10 to 12 points at the figure's own size), fixed figure size and DPI."""
    sns.set_theme(context="notebook", style="whitegrid", palette=list(OKABE_ITO),
                  rc={"figure.figsize": SINGLE, "figure.dpi": 100, "savefig.dpi": 100,
                      "axes.titleweight": "bold", "legend.fontsize": 10,
                      "legend.title_fontsize": 10})


def series_styles(levels) -> dict:
    """Colour, marker and line style of each level, in the order given:
    ``{level: {"color": ..., "marker": ..., "linestyle": ...}}``.

    The first eight levels differ in all three; no two of the first forty share all
    three.  Every helper draws its series with these, so a chapter that adds a series to
    a figure can match them."""
    return {level: {"color": OKABE_ITO[i % len(OKABE_ITO)],
                    "marker": MARKERS[i % len(MARKERS)],
                    "linestyle": LINESTYLES[i % len(LINESTYLES)]}
            for i, level in enumerate(dict.fromkeys(levels))}


# --- shared machinery ---------------------------------------------------------------


def _require(df: pd.DataFrame, *columns: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.empty:
        raise ValueError("cannot plot an empty data frame")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"data frame lacks column(s) {', '.join(missing)}")


def _levels(df: pd.DataFrame, column: str | None) -> list:
    """The values of ``column`` in their order - a categorical column's categories that
    occur, else the order of first appearance; ``[None]`` without a column."""
    if column is None:
        return [None]
    values = df[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return list(dict.fromkeys(values.dropna()))


def _handle(look: dict, *, line: bool = True, filled: bool = True) -> Line2D:
    """A legend handle with a series' colour, marker and (with ``line``) line style."""
    return Line2D([], [], color=look["color"], marker=look["marker"],
                  linestyle=look["linestyle"] if line else "none",
                  markerfacecolor=look["color"] if filled else "white", markersize=7)


def _legend_columns(labels, width: float) -> int:
    """The most legend columns of these labels (filled column by column, as matplotlib
    does) that fit across ``width`` inches."""
    chars = [max([len(line) for line in str(label).splitlines()] + [0])
             for label in labels]
    for ncols in range(len(chars), 1, -1):
        rows = math.ceil(len(chars) / ncols)
        # about 5.4 points a character at 10 points; 0.7 inches of handle and padding
        needed = sum(0.075 * max(chars[i:i + rows]) + 0.7
                     for i in range(0, len(chars), rows))
        if needed <= width:
            return ncols
    return 1


def _legend_height(n_entries: int, ncols: int = 1) -> float:
    """Inches a legend of ``n_entries`` in ``ncols`` columns takes below the axes."""
    return 0.15 + 0.24 * math.ceil(n_entries / max(1, ncols)) if n_entries else 0.0


def _legend(fig: Figure, handles, labels, *, spare=None, title: str | None = None,
            ncols: int | None = None):
    """The figure's one legend, off the data: centred in ``spare`` (the empty cell of a
    grid, as ``(axes above it, axes left of it)``) if there is one, else below every
    axes, in as many columns as fit (rows filled evenly)."""
    if not handles:
        return None
    if spare is not None:
        above, left = spare
        where = mpl_transforms.blended_transform_factory(above.transAxes,
                                                         left.transAxes)
        return fig.legend(handles, labels, loc="center", bbox_to_anchor=(0.5, 0.5),
                          bbox_transform=where, title=title, frameon=False)
    ncols = ncols or _legend_columns(labels, fig.get_figwidth() - 0.3)
    ncols = math.ceil(len(labels) / math.ceil(len(labels) / ncols))
    return fig.legend(handles, labels, loc="outside lower center", ncols=ncols,
                      title=title, frameon=False)


def _single(n_entries: int = 0, ncols: int = 1, width: float = SINGLE[0]):
    """A one-panel figure, room for a legend of ``n_entries`` below: (figure, axes)."""
    fig = Figure(figsize=(width, SINGLE[1] + _legend_height(n_entries, ncols)),
                 layout="constrained")
    return fig, fig.subplots()


def _grid(n: int, *, ncols: int = 2, row_height: float = 3.1, legend_entries: int = 0,
          sharey: bool = False):
    """``n`` panels in rows of at most ``ncols``: ``(figure, axes, spare)``; ``spare``
    is ``(axes above, axes left)`` of the first empty cell, where the legend goes, or
    None when the grid is full (and the legend of ``legend_entries`` goes below).  One
    panel gets the book's one-panel size."""
    cols = max(1, min(n, ncols))
    rows = math.ceil(n / cols)
    full = n == rows * cols
    below = _legend_height(legend_entries, 3) if full else 0.0
    if n == 1:
        size = (SINGLE[0], SINGLE[1] + below)
    else:
        size = (MAX_WIDTH, row_height * rows + below + (0.3 if rows > 1 else 0.6))
    fig = Figure(figsize=size, layout="constrained")
    spec = fig.add_gridspec(rows, cols)
    axes = []
    for i in range(n):
        shared = axes[0] if sharey and axes else None
        axes.append(fig.add_subplot(spec[i // cols, i % cols], sharey=shared))
    if full:
        return fig, axes, None
    return fig, axes, (axes[n - cols], axes[n - 1] if n % cols else axes[n - cols])


def _title(fig: Figure, axes, title: str, panels) -> None:
    """One panel: ``title`` on it; several: each panel's name on it, ``title`` above."""
    if len(axes) == 1 and panels[0] is None:
        axes[0].set_title(title)
        return
    for ax, panel in zip(axes, panels):
        ax.set_title(str(panel))
    if title:
        fig.suptitle(title, fontweight="bold")


def _power_label(value: float, powers: bool) -> str:
    """A log-axis tick label: plain digits (``0.5``, ``2``, ``100``), or with ``powers``
    a power of ten as ``10^k``; never ``2x10^0``."""
    if value <= 0:
        return ""
    power = np.log10(value)
    if powers and np.isclose(power, round(power)):
        return f"$10^{{{round(power)}}}$"
    return f"{value:g}"


def _plain_log_ticks(axis) -> None:
    """Log-axis ticks in plain numbers (``0.5``, ``2``, ``20000``, never ``2x10^0``) on
    an axis within 0.001 to 100,000, else powers of ten only; on plain axes over less
    than about two decades the 2s and 5s between the powers of ten are labelled too,
    over less than about one the 3s as well, and over less than a third of a decade
    every minor tick."""
    def span() -> tuple[float, float]:
        return tuple(sorted(axis.get_view_interval()))

    def powers() -> bool:
        low, high = span()
        return low < 1e-3 or high >= 1e5

    def major(value, _):
        return _power_label(value, powers())

    def minor(value, _):
        low, high = span()
        if low <= 0 or value <= 0 or powers():
            return ""
        decades = np.log10(high / low)
        mantissa = round(value / 10 ** np.floor(np.log10(value) + 1e-9), 6)
        if decades <= 0.35 or (decades <= 1.3 and mantissa in (2, 3, 5)) \
                or (decades <= 2.2 and mantissa in (2, 5)):
            return _power_label(value, False)
        return ""

    axis.set_major_formatter(mpl_ticker.FuncFormatter(major))
    axis.set_minor_formatter(mpl_ticker.FuncFormatter(minor))


def _log_axes(ax, *, logx: bool = False, logy: bool = False) -> None:
    if logx:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
    if logy:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)


def _renderer(fig: Figure):
    """Lay the figure out and return a renderer that measures its texts."""
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def _fit_axis_labels(fig: Figure) -> Figure:
    """Wrap every axis label longer than its axes onto as many lines as it needs."""
    renderer = _renderer(fig)
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        for label, room, along in ((ax.yaxis.label, frame.height, "height"),
                                   (ax.xaxis.label, frame.width, "width")):
            text = label.get_text().replace("\n", " ")
            length = getattr(label.get_window_extent(renderer), along)
            if text and length > room:
                width = max(12, int(len(text) * room / length * 0.95))
                label.set_text(textwrap.fill(text, width))
    return fig


def _positive(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    data = df[(df[x] > 0) & (df[y] > 0)]
    if data.empty:
        raise ValueError("log-log plot needs positive values")
    return data


def _binned_medians(data: pd.DataFrame, x: str, y: str, by: list[str]) -> pd.DataFrame:
    """Medians of ``x`` and ``y`` per log-spaced bin of ``x`` (and per ``by``)."""
    edges = np.unique(np.round(np.logspace(0, np.log10(data[x].max()) + 1e-9, 12)))
    bins = pd.cut(data[x], np.append(edges, np.inf), right=False)
    return data.groupby([bins] + by, observed=True).agg(
        x=(x, "median"), y=(y, "median")).reset_index()


def _reference_law(ax, data: pd.DataFrame, x: str, y: str, slope: float) -> Line2D:
    """The line ``x^slope`` through the median of ``y`` at the smallest ``x``."""
    x0 = data[x].min()
    y0 = data.loc[data[x] == x0, y].median()
    grid = np.logspace(np.log10(x0), np.log10(data[x].max()), 50)
    (line,) = ax.plot(grid, y0 * (grid / x0) ** slope, color="black", ls="--", lw=1,
                      label=f"reference $n^{{{slope:g}}}$")
    return line


# --- the helpers ----------------------------------------------------------------------


def agreement(df: pd.DataFrame, x: str, y: str, hue: str, *, title: str = "",
              xlabel: str = "", ylabel: str = "") -> Figure:
    """Scatter of ``y`` against ``x`` on [0, 1] with the identity line, coloured (and
    sized) by log ``hue``; points with the largest ``hue`` are drawn on top."""
    _require(df, x, y, hue)
    df = df.sort_values(hue)  # the best-supported points are drawn last, on top
    fig, ax = _single(1)
    size = 6 + 6 * np.log10(df[hue].clip(lower=1))
    points = ax.scatter(df[x], df[y], c=df[hue], cmap=PALETTE, norm=LogNorm(), s=size,
                        alpha=0.7, linewidths=0)
    (identity,) = ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--",
                          label="identity")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=xlabel or x,
           ylabel=ylabel or y, title=title)
    fig.colorbar(points, ax=ax, label=hue)
    _legend(fig, [identity], ["identity"])
    return _fit_axis_labels(fig)


def loglog_decay(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None,
                 reference_slope: float = -0.5, title: str = "", xlabel: str = "",
                 ylabel: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes: points, binned medians and an ``x^slope``
    reference.

    Each ``hue`` level has its colour, marker and line style, its points and its medians
    alike.  The reference line passes through the median of ``y`` at the smallest ``x``.
    """
    _require(df, x, y, *(c for c in [hue] if c))
    data = _positive(df, x, y)
    levels = _levels(data, hue)
    looks = series_styles(levels)
    fig, ax = _single(len(levels) + 1, 2)
    for level in levels:
        rows = data if level is None else data[data[hue] == level]
        ax.scatter(rows[x], rows[y], s=14, alpha=0.35, linewidths=0,
                   color=looks[level]["color"], marker=looks[level]["marker"])
    medians = _binned_medians(data, x, y, [hue] if hue else [])
    handles, labels = [], []
    for level in levels:
        part = medians if level is None else medians[medians[hue] == level]
        label = "median" if level is None else f"{level} (median)"
        ax.plot(part["x"], part["y"], lw=2, markersize=6, label=label, **looks[level])
        handles.append(_handle(looks[level]))
        labels.append(label)
    handles.append(_reference_law(ax, data, x, y, reference_slope))
    labels.append(handles[-1].get_label())
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    _log_axes(ax, logx=True, logy=True)
    _legend(fig, handles, labels, ncols=2 if len(labels) > 2 else None)
    return _fit_axis_labels(fig)


def loglog_stages(df: pd.DataFrame, x: str, y: str, *, stage: str,
                  col: str | None = None, reference_slope: float = -0.5,
                  title: str = "", xlabel: str = "", ylabel: str = "",
                  stage_label: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes when the points come in ordered stages (the
    refits of a posterior, say): points coloured by their ``stage`` on the sequential
    :data:`PALETTE`, with a colour bar (``stage_label``); one line of binned medians per
    stage, in its colour, the first and the last stage's labelled at their ends; an
    ``x^slope`` reference through the median of ``y`` at the smallest ``x``; and one
    panel per value of ``col``, stacked."""
    _require(df, x, y, stage, *(c for c in [col] if c))
    data = _positive(df, x, y)
    if not pd.api.types.is_numeric_dtype(data[stage]):
        raise TypeError(f"stage column {stage!r} must be numeric: its order is drawn")
    panels = _levels(data, col)
    fig, axes, _ = _grid(len(panels), ncols=1, row_height=3.3, legend_entries=2)
    fig.set_figwidth(MAX_WIDTH)
    norm = Normalize(data[stage].min(), data[stage].max())
    cmap = sns.color_palette(PALETTE, as_cmap=True)
    for ax, panel in zip(axes, panels):
        part = data if panel is None else data[data[col] == panel]
        ax.scatter(part[x], part[y], c=part[stage], cmap=cmap, norm=norm, s=12,
                   alpha=0.45, linewidths=0)
        medians = _binned_medians(part, x, y, [stage])
        stages = sorted(medians[stage].unique())
        for value in stages:
            line = medians[medians[stage] == value].sort_values("x")
            ax.plot(line["x"], line["y"], color=cmap(norm(value)), lw=1.6, marker="o",
                    markersize=3.5, label=f"{stage} {value:g} (median)")
            if len(stages) > 1 and value in (stages[0], stages[-1]):
                ax.annotate(f"{value:g}", (line["x"].iloc[-1], line["y"].iloc[-1]),
                            xytext=(4, 0), textcoords="offset points", va="center",
                            fontsize=9, color=INK)
        reference = _reference_law(ax, part, x, y, reference_slope)
        ax.set(xlabel=xlabel or x, ylabel=ylabel or y)
        _log_axes(ax, logx=True, logy=True)
    _title(fig, axes, title, panels)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes,
                       label=stage_label or stage, aspect=30 * len(axes))
    bar.ax.tick_params(labelsize=10)
    _legend(fig, [Line2D([], [], color=INK, lw=1.6, marker="o", markersize=3.5),
                  reference],
            ["binned medians, one line per colour", reference.get_label()], ncols=2)
    return _fit_axis_labels(fig)


def comparison(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None,
               title: str = "", xlabel: str = "", ylabel: str = "", seed: int = 0,
               reference: float | None = None, reference_label: str = "",
               order: list | None = None) -> Figure:
    """Bars of the mean of ``y`` per ``x`` (in ``order``, if given; and ``hue``) with
    seeded bootstrap 95% intervals, and an optional horizontal reference line.  Each
    ``hue`` level has its colour and its hatch.  Long category names are wrapped onto
    several lines."""
    _require(df, x, y, *(c for c in [hue] if c))
    levels = _levels(df, hue)
    looks = series_styles(levels)
    hatches = {level: HATCHES[i % len(HATCHES)] for i, level in enumerate(levels)}
    labelled = reference is not None and bool(reference_label)
    fig, ax = _single((len(levels) if hue else 0) + labelled, 3)
    sns.barplot(data=df, x=x, y=y, hue=hue, errorbar=("ci", 95), seed=seed, ax=ax,
                capsize=0.1, err_kws={"linewidth": 1, "color": INK}, order=order,
                hue_order=levels if hue else None, legend=False, edgecolor=INK,
                linewidth=0.8,
                palette={lv: looks[lv]["color"] for lv in levels} if hue else None,
                color=None if hue else OKABE_ITO[0])
    handles, labels = [], []
    for level, container in zip(levels, ax.containers):
        for bar in container:
            bar.set_hatch(hatches[level])
        if hue:
            handles.append(mpl_patches.Patch(facecolor=looks[level]["color"],
                                             edgecolor=INK, hatch=hatches[level]))
            labels.append(str(level))
    if reference is not None:
        line = ax.axhline(reference, color="black", ls="--", lw=1,
                          label=reference_label or None)
        if labelled:
            handles.append(line)
            labels.append(reference_label)
    ax.set_xticks(ax.get_xticks(), [textwrap.fill(t.get_text(), WRAP)
                                    for t in ax.get_xticklabels()])
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    _legend(fig, handles, labels, title=hue, ncols=min(len(labels), 3) or None)
    return _fit_axis_labels(fig)


def curves(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None,
           style: str | None = None, col: str | None = None, title: str = "",
           xlabel: str = "", ylabel: str = "", diagonal: bool = False, seed: int = 0,
           logx: bool = False, logy: bool = False, aggregate: bool = True,
           interval: tuple[str, str] | None = None, ncols: int = 2,
           sharey: bool = False, references: dict[str, float] | None = None) -> Figure:
    """Lines of ``y`` against ``x``, one per ``hue`` (its colour, marker and line style)
    and ``style`` (its line style), one panel per value of ``col`` (log axes with
    ``logx``, ``logy``).

    With ``aggregate`` (the default), rows that share an ``x`` (seeds) are drawn as
    their mean with a seeded bootstrap 95% band; ``aggregate=False`` draws the points as
    given, in order (a ROC curve's vertical steps repeat ``x``); ``interval`` names two
    columns, ``(low, high)``, of a band computed beforehand, drawn around ``y`` as given
    (where it is not NaN).  ``diagonal`` adds the identity line; ``references`` maps
    labels to the heights of horizontal lines (black, one line style each) drawn in
    every panel.  Panels wrap onto rows of ``ncols``; the one legend names every line
    and sits in the grid's empty cell, if any, else below the panels."""
    columns = [c for c in [hue, style, col] if c] + list(interval or [])
    _require(df, x, y, *columns)
    references = dict(references or {})
    if len(references) > len(REFERENCE_STYLES):
        raise ValueError(f"at most {len(REFERENCE_STYLES)} reference lines, got "
                         f"{len(references)}")
    panels = _levels(df, col)
    looks = _series_looks(df, hue, style)
    handles = [_handle(look) for look in looks.values()] if hue or style else []
    labels = [_series_name(key) for key in looks] if hue or style else []
    if diagonal:
        handles.append(Line2D([], [], color="grey", ls=":", lw=1))
        labels.append("chance")
    for name, dash in zip(references, REFERENCE_STYLES):
        handles.append(Line2D([], [], color="black", ls=dash, lw=1))
        labels.append(name)
    fig, axes, spare = _grid(len(panels), ncols=ncols, sharey=sharey,
                             legend_entries=len(labels))
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        part = df if panel is None else df[df[col] == panel]
        for key, look in looks.items():
            rows = part
            for column, value in zip((hue, style), key):
                if column:
                    rows = rows[rows[column] == value]
            if not rows.empty:
                _curve(ax, rows, x, y, look, label=_series_name(key),
                       aggregate=aggregate, interval=interval, seed=seed)
        if diagonal:
            ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
        for (name, height), dash in zip(references.items(), REFERENCE_STYLES):
            ax.axhline(height, color="black", ls=dash, lw=1, label=name)
        ax.set(xlabel=xlabel or x, ylabel=(ylabel or y) if i % ncols == 0 else "")
        _log_axes(ax, logx=logx, logy=logy)
    _title(fig, axes, title, panels)
    _legend(fig, handles, labels, spare=spare)
    return _fit_axis_labels(fig)


def _series_looks(df: pd.DataFrame, hue: str | None, style: str | None) -> dict:
    """``{(hue level, style level): look}`` of every pair present, in order: the hue
    level's colour and marker, and the style level's line style (the hue level's own
    without ``style``).  A missing column's level is None."""
    hues, kinds = _levels(df, hue), _levels(df, style)
    colours = series_styles(hues) if hue else series_styles(kinds)
    looks = {}
    for h in hues:
        for k in kinds:
            rows = df[df[hue] == h] if hue else df
            rows = rows[rows[style] == k] if style else rows
            if rows.empty:
                continue
            look = dict(colours[h] if hue else colours[k])
            if style:
                look["linestyle"] = LINESTYLES[kinds.index(k) % len(LINESTYLES)]
            looks[(h, k)] = look
    return looks


def _series_name(key: tuple) -> str | None:
    names = [str(level) for level in key if level is not None]
    return ", ".join(names) if names else None


def _markevery(n_points: int) -> int:
    """Every how many points a line carries its marker: about a dozen markers a line."""
    return max(1, round(n_points / 12))


def _curve(ax, rows: pd.DataFrame, x: str, y: str, look: dict, *, label,
           aggregate: bool, interval, seed: int) -> None:
    """One line of :func:`curves`."""
    if interval:
        rows = rows.sort_values(x)
        band = rows[list(interval)].notna().all(axis=1)
        if band.any():
            ax.fill_between(rows.loc[band, x], rows.loc[band, interval[0]],
                            rows.loc[band, interval[1]], color=look["color"], alpha=0.2,
                            linewidth=0)
        ax.plot(rows[x], rows[y], markevery=_markevery(len(rows)), label=label,
                markersize=6, **look)
        return
    how = dict(errorbar=("ci", 95), seed=seed) if aggregate else \
        dict(estimator=None, errorbar=None, sort=False)
    n_points = rows[x].nunique() if aggregate else len(rows)
    sns.lineplot(data=rows, x=x, y=y, ax=ax, legend=False, label=label, markersize=6,
                 markevery=_markevery(n_points), **look, **how)


def power_laws(df: pd.DataFrame, x: str, y: str, *, hue: str, style: str | None = None,
               title: str = "", xlabel: str = "", ylabel: str = "",
               reference: float | None = None, reference_label: str = "") -> Figure:
    """``y`` against ``x`` on log-log axes, each group of ``hue`` (and ``style``) with
    its least-squares power law ``y = a x^b`` drawn as a line, and an optional
    horizontal reference line (a threshold).  Non-positive values cannot be drawn on
    log axes and are left out.

    Each ``hue`` level has its colour, marker and (without ``style``) line style; each
    ``style`` level its line style, and its markers filled (the first, third, ...
    level) or open.  The legend, below the
    axes, has a column per ``style`` level headed by its look, and names every group
    with its slope ``b`` - or says that it has a single ``x``, too few for a fit.  The
    fitted lines are labelled ``"<hue>, <style>: slope b"`` (``"<hue>: slope b"``)."""
    _require(df, x, y, hue, *(c for c in [style] if c))
    data = _positive(df, x, y)
    if reference is not None and not reference > 0:
        raise ValueError(f"a reference line on log axes must be positive, got "
                         f"{reference!r}")
    hues, kinds = _levels(data, hue), _levels(data, style)
    colours = series_styles(hues)
    groups = {}  # per style level: [(hue level, its rows)]
    for kind in kinds:
        rows = data if kind is None else data[data[style] == kind]
        groups[kind] = [(h, rows[rows[hue] == h]) for h in hues
                        if (rows[hue] == h).any()]
    depth = max(len(g) for g in groups.values()) + (style is not None)
    threshold = reference is not None and bool(reference_label)
    fig, ax = _single(depth + threshold + 1, 1,
                      SINGLE[0] if style is None else MAX_WIDTH)
    handles, labels = [], []
    for i, kind in enumerate(kinds):  # one legend column per style: its key, its groups
        filled = i % 2 == 0
        dash = LINESTYLES[i % len(LINESTYLES)]
        column = [] if style is None else [(
            Line2D([], [], color=INK, ls=dash, marker="o",
                   markerfacecolor=INK if filled else "white"), f"{kind}:")]
        for h, part in groups[kind]:
            look = colours[h] if style is None else dict(colours[h], linestyle=dash)
            ax.scatter(part[x], part[y], s=40, marker=look["marker"],
                       edgecolors=look["color"], linewidths=1.2, zorder=3,
                       facecolors=look["color"] if filled else "white")
            if part[x].nunique() < 2:
                column.append((_handle(look, filled=filled),
                               f"{h}: no fit (a single x value)"))
                continue
            lx, ly = np.log(part[x].to_numpy(float)), np.log(part[y].to_numpy(float))
            slope, intercept = np.polyfit(lx, ly, 1)
            grid = np.linspace(lx.min(), lx.max(), 20)
            key = str(h) if kind is None else f"{h}, {kind}"
            ax.plot(np.exp(grid), np.exp(intercept + slope * grid), color=look["color"],
                    ls=look["linestyle"], lw=1.5, label=f"{key}: slope {slope:.2f}")
            column.append((_handle(look, filled=filled), f"{h}: {slope:.2f}"))
        column += [(Line2D([], [], alpha=0), "")] * (depth - len(column))
        if threshold:  # the threshold ends the first column
            column.append((Line2D([], [], color="black", ls=":", lw=1), reference_label)
                          if i == 0 else (Line2D([], [], alpha=0), ""))
        handles += [handle for handle, _ in column]
        labels += [label for _, label in column]
    if reference is not None:
        ax.axhline(reference, color="black", ls=":", lw=1,
                   label=reference_label or None)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    _log_axes(ax, logx=True, logy=True)
    _legend(fig, handles, labels, ncols=len(kinds),
            title="slope $b$ of the fitted power law $y = a\\,x^b$")
    return _fit_axis_labels(fig)


def reliability(df: pd.DataFrame, confidence: str, accuracy: str, *, weight: str,
                col: str | None = None, hue: str | None = None, title: str = "",
                xlabel: str = "", ylabel: str = "") -> Figure:
    """Reliability diagrams: ``accuracy`` against ``confidence`` on [0, 1], one line per
    ``hue`` (its colour, marker and line style) and one panel per value of ``col`` (in
    rows of two), through points whose area grows linearly with ``weight`` (a bin's
    share of the data, on one scale across panels; the smallest stay visible), with the
    diagonal of perfect calibration."""
    _require(df, confidence, accuracy, weight, *(c for c in [hue, col] if c))
    panels = _levels(df, col)
    groups = _levels(df, hue)
    looks = series_styles(groups)
    largest = df[weight].max()
    fig, axes, spare = _grid(len(panels), row_height=3.4, sharey=True,
                             legend_entries=len(groups) + 1)
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        part = df if panel is None else df[df[col] == panel]
        ax.plot([0, 1], [0, 1], color="black", ls="--", lw=1,
                label="perfect calibration")
        for group in groups:
            rows = part if group is None else part[part[hue] == group]
            if rows.empty:
                continue
            rows = rows.sort_values(confidence)
            look = looks[group]
            ax.plot(rows[confidence], rows[accuracy], color=look["color"], lw=1.2,
                    alpha=0.9, ls=look["linestyle"],
                    label=None if group is None else str(group))
            area = 8 + 240 * rows[weight] / largest if largest > 0 else 8
            ax.scatter(rows[confidence], rows[accuracy], s=area, color=look["color"],
                       marker=look["marker"], alpha=0.7, linewidths=0)
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=xlabel or confidence,
               ylabel=(ylabel or accuracy) if i % 2 == 0 else "")
    _title(fig, axes, title, panels)
    handles = [Line2D([], [], color="black", ls="--", lw=1)]
    labels = ["perfect calibration"]
    if hue:
        handles += [_handle(looks[group]) for group in groups]
        labels += [str(group) for group in groups]
    _legend(fig, handles, labels, spare=spare)
    return _fit_axis_labels(fig)


def _frontier(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows that no other row beats on both ``x`` (lower) and ``y`` (higher)."""
    ordered = df.sort_values([x, y], ascending=[True, False])
    return ordered[ordered[y] > ordered[y].cummax().shift(fill_value=-np.inf)]


def _point_label(name) -> str:
    """A point's label on lines of about :data:`LABEL_WRAP` characters, a bracketed note
    on a line of its own, words never broken."""
    head, bracket, note = str(name).partition(" (")
    lines = [textwrap.fill(head, LABEL_WRAP, break_long_words=False,
                           break_on_hyphens=False)]
    if bracket:
        lines.append("(" + note)
    return "\n".join(lines)


def _place_labels(fig: Figure, ax, texts) -> None:
    """Move each point label to the first of :data:`LABEL_OFFSETS` where it stays inside
    the axes and overlaps no point and no label placed before it (in the order given); a
    label with no such place keeps the first."""
    renderer = _renderer(fig)
    frame = ax.get_window_extent(renderer)
    points = [ax.transData.transform(t.xy) for t in texts]
    taken = []
    for text in texts:
        for dx, dy, ha, va in LABEL_OFFSETS + LABEL_OFFSETS[:1]:
            text.set(ha=ha, va=va)
            text.xyann = (dx, dy)
            box = text.get_window_extent(renderer)
            grown = box.expanded(1.05, 1.2)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and \
                frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(grown.overlaps(other) for other in taken) \
                    and not any(grown.contains(*p) for p in points):
                break
        taken.append(box)


def pareto(df: pd.DataFrame, x: str, y: str, *, label: str, hue: str, title: str = "",
           xlabel: str = "", ylabel: str = "", logx: bool = False,
           region: tuple[float, float, float, float] | None = None,
           region_label: str = "") -> Figure:
    """Quality ``y`` (higher is better) against cost ``x`` (lower is better): one
    labelled point per row, with the colour and marker of its ``hue``, and the Pareto
    frontier - the rows that no other row beats on both - ringed and joined by a dashed
    step line (a single ring when one row beats all others).  ``region``, ``(x0, x1, y0,
    y1)``, shades and hatches the rectangle where a rule would hold, named in the legend
    by ``region_label``.  Labels are placed where they overlap neither each other nor a
    point, inside the axes, where they can be."""
    _require(df, x, y, label, hue)
    levels = _levels(df, hue)
    looks = series_styles(levels)
    fig, ax = _single(len(levels) + 1 + bool(region and region_label), 3)
    handles, labels = [], []
    if region is not None:
        x0, x1, y0, y1 = region
        ax.add_patch(mpl_patches.Rectangle(
            (x0, y0), x1 - x0, y1 - y0, facecolor=OKABE_ITO[2], alpha=0.15,
            edgecolor=OKABE_ITO[2], hatch="//", linewidth=1, zorder=0))
        ax.update_datalim([(x0, y0), (x1, y1)])  # the whole region in view
        if region_label:
            handles.append(mpl_patches.Patch(facecolor=OKABE_ITO[2], alpha=0.3,
                                             hatch="//", edgecolor=OKABE_ITO[2]))
            labels.append(region_label)
    for level in levels:
        rows = df[df[hue] == level]
        ax.scatter(rows[x], rows[y], s=70, color=looks[level]["color"],
                   marker=looks[level]["marker"], edgecolors="white", linewidths=0.6,
                   zorder=3, label=str(level))
        handles.append(_handle(looks[level], line=False))
        labels.append(str(level))
    front = _frontier(df, x, y)
    (line,) = ax.step(front[x], front[y], where="post", color=INK, lw=1.5, ls="--",
                      marker="o", markersize=14, markerfacecolor="none",
                      markeredgewidth=1.2, label="Pareto frontier", zorder=2)
    handles.append(line)
    labels.append("Pareto frontier")
    ax.autoscale_view()
    _log_axes(ax, logx=logx)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    texts = [ax.annotate(_point_label(getattr(row, label)),
                         (getattr(row, x), getattr(row, y)), xytext=(6, 5),
                         textcoords="offset points", fontsize=10, zorder=4,
                         linespacing=1.0)
             for row in df.sort_values([x, y]).itertuples(index=False)]
    for text in texts:  # labels move after the layout, which must not make room for it
        text.set_in_layout(False)
    _legend(fig, handles, labels)
    _fit_axis_labels(fig)
    _place_labels(fig, ax, texts)
    return fig


#: Verdict colours (Okabe and Ito's colour-blind-safe palette) and symbols: every tile
#: also carries its symbol, and the legend the words, so colour is never the only
#: signal.
VERDICT_STYLE = {"SUPPORTED": ("#0072B2", "white", "\N{CHECK MARK}"),
                 "REFUTED": ("#D55E00", "white", "\N{BALLOT X}"),
                 "INCONCLUSIVE": ("#F0E442", "black", "?")}
UNTESTED_STYLE = ("white", "#555555", "\N{EM DASH}")


def verdict_tiles(df: pd.DataFrame, *, title: str = "") -> Figure:
    """One tile per claim and round: a row of tiles per ``group`` (in order of
    appearance), the round-1 claim above, its refinements below it (``round``),
    ``column`` within the group; each tile coloured by ``verdict``
    (:data:`VERDICT_STYLE`) and labelled with its ``id`` and the verdict's symbol, with
    a legend of the words below the tiles."""
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
                        va="center", fontsize=9, color=INK)
        for row in df[df["group"] == group].itertuples(index=False):
            face, ink, symbol = VERDICT_STYLE.get(row.verdict, UNTESTED_STYLE)
            y = top + row.round - 1
            ax.add_patch(mpl_patches.FancyBboxPatch(
                (row.column + 0.05, y + 0.05), 0.9, 0.9,
                boxstyle="round,pad=0,rounding_size=0.1", facecolor=face,
                edgecolor=INK, linewidth=0.8))
            ax.text(row.column + 0.5, y + 0.5, f"{row.id}\n{symbol}", ha="center",
                    va="center", color=ink, fontsize=9, fontweight="bold",
                    linespacing=1.1)
    ax.set_xlim(-label_room, width + 1.3)
    ax.set_ylim(len(groups) * (depth + 0.6) - 0.5, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    handles = [mpl_patches.Patch(facecolor=face, edgecolor=INK,
                                 label=f"{symbol} {word}")
               for word, (face, _, symbol) in VERDICT_STYLE.items()]
    if (~df["verdict"].isin(list(VERDICT_STYLE))).any():
        face, _, symbol = UNTESTED_STYLE
        handles.append(mpl_patches.Patch(facecolor=face, edgecolor=INK,
                                         label=f"{symbol} not yet tested"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02),
              ncol=2, frameon=False, fontsize=9)
    if title:
        ax.set_title(title, fontweight="bold")
    fig.tight_layout()
    return fig
