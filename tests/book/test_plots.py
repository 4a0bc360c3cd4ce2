"""Tests of bayes_at_scale.book.plots: what each figure helper draws, its input checks,
and the rules every figure of the book keeps - colour is never the only cue, legends lie
off the data, figures fit the book's column, and every series is named in the legend."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import matplotlib
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from bayes_at_scale.book import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 5000, 200)
    return pd.DataFrame({
        "n": n,
        "empirical": rng.uniform(0, 1, 200),
        "model": rng.uniform(0, 1, 200),
        "tv": 0.5 * n.astype(float) ** -0.5 * np.exp(rng.normal(0, 0.1, 200)),
        "group": rng.choice(["a", "b"], 200),
    })


def _line(ax, label_start: str):
    found = [line for line in ax.lines if line.get_label().startswith(label_start)]
    assert len(found) == 1, [line.get_label() for line in ax.lines]
    return found[0]


def _legend(fig):
    """The figure's one legend (the helpers put it on the figure, off every axes)."""
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1, len(fig.legends)
    return fig.legends[0]


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for t in _legend(fig).get_texts() if t.get_text()]


def _renderer(fig):
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


# --- the rules every figure keeps -----------------------------------------------------


def test_series_styles_differ_in_colour_marker_and_line_style():
    styles = plots.series_styles(range(40))
    assert list(styles) == list(range(40))
    first = list(styles.values())[:8]
    for key in ("color", "marker", "linestyle"):
        assert len({str(s[key]) for s in first}) == 8, key
    looks = {(s["color"], s["marker"], str(s["linestyle"])) for s in styles.values()}
    assert len(looks) == 40
    assert {s["color"] for s in styles.values()} <= set(plots.OKABE_ITO)
    # blue and vermillion, told apart by every kind of colour vision, come first
    assert [s["color"] for s in first[:2]] == ["#0072B2", "#D55E00"]
    # repeated levels are one level, in first-appearance order
    assert list(plots.series_styles(["b", "a", "b"])) == ["b", "a"]


def _law_frame() -> pd.DataFrame:
    n = np.logspace(3, 6, 5)
    rows = [pd.DataFrame({"N": n, "kl": a * n ** (b - shift), "model": m, "unit": u})
            for m, a, b in (("MAP", 2, -0.5), ("LA", 1, -1.0), ("ens", 3, -0.7))
            for u, shift in (("epochs", 0.0), ("token epochs", 0.1))]
    return pd.concat(rows + [pd.DataFrame({"N": [1e3], "kl": [5.0], "model": "full",
                                           "unit": "epochs"})], ignore_index=True)


def _seed_curves() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    t = np.linspace(0.1, 1, 30)
    return pd.concat([pd.DataFrame({"t": t, "v": k * t + rng.normal(0, 0.05, 30),
                                    "seed": seed, "model": f"model {k}",
                                    "world": "left" if seed < 2 else "right",
                                    "kind": "fit" if seed % 2 else "measured"})
                      for k in range(5) for seed in range(4)], ignore_index=True)


def _bins() -> pd.DataFrame:
    confidence = np.array([0.3, 0.6, 0.95])
    return pd.concat([pd.DataFrame({"confidence": confidence,
                                    "accuracy": confidence - 0.1 * s,
                                    "share": [0.1, 0.2, 0.7], "stage": stage,
                                    "seed": f"seed {s}"})
                      for stage in ("before", "after a", "after b") for s in range(3)],
                     ignore_index=True)


def _bar_frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({"measure": np.tile(["a", "b", "c"], 40),
                         "model": np.repeat(["MAP", "LA", "x5", "x10"], 30),
                         "value": rng.uniform(0, 1, 120)})


def _front() -> pd.DataFrame:
    rows = [("MAP", 1.0, 0.97, "MAP"), ("LA kron (1 - max p)", 1.4, 0.88, "Laplace"),
            ("LA diag", 1.2, 0.89, "Laplace"), ("LA all", 2.1, 0.5, "Laplace"),
            ("ensemble x2", 2.0, 0.96, "ensemble"),
            ("ensemble x3", 3.0, 0.957, "ensemble"),
            ("ensemble x4", 4.0, 0.953, "ensemble"),
            ("ensemble x5", 5.0, 0.948, "ensemble")]
    return pd.DataFrame(rows, columns=["method", "compute", "auroc", "kind"])


def _stages() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for env in ("wheel", "digits"):
        for step in (10, 60, 110, 160):
            pulls = rng.integers(1, 300, 8)
            scale = 0.1 * (1 + step / 50)
            rows.append(pd.DataFrame({"pulls": pulls, "std": scale * pulls ** -0.5,
                                      "step": step, "environment": env}))
    return pd.concat(rows, ignore_index=True)


FIGURES = {
    "agreement": lambda: plots.agreement(
        pd.DataFrame({"e": [0.1, 0.5, 0.9], "m": [0.2, 0.5, 0.8], "n": [1, 10, 1000]}),
        "e", "m", "n"),
    "loglog_decay": lambda: plots.loglog_decay(_stages(), "pulls", "std",
                                               hue="environment"),
    "loglog_stages": lambda: plots.loglog_stages(_stages(), "pulls", "std",
                                                 stage="step", col="environment",
                                                 stage_label="refit"),
    "comparison": lambda: plots.comparison(_bar_frame(), "measure", "value",
                                           hue="model", reference=0.5,
                                           reference_label="half"),
    "curves": lambda: plots.curves(_seed_curves(), "t", "v", hue="model",
                                   references={"zero": 0.0}),
    "curves_panels": lambda: plots.curves(_seed_curves(), "t", "v", hue="model",
                                          col="world", diagonal=True),
    "curves_style": lambda: plots.curves(_seed_curves(), "t", "v", hue="model",
                                         style="kind", col="world"),
    "curves_three_panels": lambda: plots.curves(
        _seed_curves().assign(world=lambda d: d["seed"].map({0: "a", 1: "b", 2: "c",
                                                             3: "c"})),
        "t", "v", hue="model", col="world", logy=False),
    "power_laws": lambda: plots.power_laws(_law_frame(), "N", "kl", hue="model",
                                           style="unit", reference=0.01,
                                           reference_label="threshold"),
    "reliability": lambda: plots.reliability(_bins(), "confidence", "accuracy",
                                             weight="share", col="stage", hue="seed"),
    "pareto": lambda: plots.pareto(_front(), "compute", "auroc", label="method",
                                   hue="kind", region=(0, 1.0, 0.85, 1.0),
                                   region_label="rule holds"),
}


def _look(handle) -> tuple:
    """What tells a legend entry apart besides its colour."""
    if isinstance(handle, matplotlib.patches.Patch):
        return ("patch", handle.get_hatch())
    marker = handle.get_marker()
    if marker in (None, "None", "", "none"):
        return (None, str(handle.get_linestyle()), None)
    face = handle.get_markerfacecolor()
    open_ = isinstance(face, str) and face.lower() in ("white", "none", "#ffffff")
    return (marker, str(handle.get_linestyle()), "open" if open_ else "filled")


@pytest.mark.parametrize("name", FIGURES)
def test_colour_is_never_the_only_cue(name):
    fig = FIGURES[name]()
    legend = _legend(fig)
    entries = [(h, t.get_text())
               for h, t in zip(legend.legend_handles, legend.get_texts())
               if t.get_text() and not t.get_text().endswith(":")]
    looks = [_look(h) for h, _ in entries]
    assert len(set(zip(looks, (text for _, text in entries)))) == len(entries)
    for (a, ta), (b, tb) in itertools.combinations(zip(looks, entries), 2):
        assert a != b, f"{ta[1]!r} and {tb[1]!r} differ by colour alone"


@pytest.mark.parametrize("name", FIGURES)
def test_legends_lie_off_the_data(name):
    fig = FIGURES[name]()
    renderer = _renderer(fig)
    box = _legend(fig).get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()


@pytest.mark.parametrize("name", FIGURES)
def test_figures_fit_the_column_with_readable_fonts(name):
    fig = FIGURES[name]()
    renderer = _renderer(fig)
    assert fig.get_figwidth() <= plots.MAX_WIDTH <= 7.3
    # nothing sticks out: saved with bbox_inches="tight" it is as wide as the figure
    assert fig.get_tightbbox(renderer).width <= plots.MAX_WIDTH + 0.05
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    assert texts and min(t.get_fontsize() for t in texts) >= 9
    # log axes read 0.5, 2, 100 or 10^4, never 2x10^0
    for ax in fig.axes:
        for label in ax.get_xticklabels() + ax.get_yticklabels():
            assert "times" not in label.get_text()


def test_every_series_is_in_the_legend():
    # a group measured at a single x has no power law, and is still named
    fig = FIGURES["power_laws"]()
    texts = _legend_texts(fig)
    assert "full: no fit (a single x value)" in texts
    assert sum(t.startswith(("MAP:", "LA:", "ens:")) for t in texts) == 6
    assert {"epochs:", "token epochs:", "threshold"} <= set(texts)
    fig = FIGURES["curves_style"]()
    assert _legend_texts(fig) == [f"model {k}, {kind}" for k in range(5)
                                  for kind in ("measured", "fit")]


# --- agreement ------------------------------------------------------------------------


def test_agreement(frame):
    fig = plots.agreement(frame, "empirical", "model", "n", title="T", ylabel="model p")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the plot and its colour bar
    ax, cbar = fig.axes
    identity = _line(ax, "identity")
    np.testing.assert_array_equal(identity.get_xdata(), [0, 1])
    np.testing.assert_array_equal(identity.get_ydata(), [0, 1])
    points = ax.collections[0]
    drawn = frame.sort_values("n")  # best-supported points last, on top
    np.testing.assert_array_equal(points.get_offsets(),
                                  drawn[["empirical", "model"]].to_numpy())
    np.testing.assert_array_equal(points.get_array(), drawn["n"].to_numpy())
    assert np.all(np.diff(points.get_sizes()) >= 0)  # and drawn larger
    assert isinstance(points.norm, LogNorm)
    assert ax.get_xlim() == pytest.approx((-0.02, 1.02))
    assert ax.get_ylim() == pytest.approx((-0.02, 1.02))
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("T", "empirical",
                                                                   "model p")
    assert cbar.get_ylabel() == "n"
    assert _legend_texts(ax.figure) == ["identity"]


# --- loglog_decay ---------------------------------------------------------------------


@pytest.mark.parametrize("slope", [-0.5, -1.0, 0.25])
def test_loglog_decay_reference_line(frame, slope):
    fig = plots.loglog_decay(frame, "n", "tv", reference_slope=slope, title="decay")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    ref = _line(ax, "reference")
    x, y = ref.get_xdata(), ref.get_ydata()
    x0 = frame["n"].min()
    assert x[0] == pytest.approx(x0) and x[-1] == pytest.approx(frame["n"].max())
    assert y[0] == pytest.approx(frame.loc[frame["n"] == x0, "tv"].median())
    assert np.polyfit(np.log(x), np.log(y), 1)[0] == pytest.approx(slope)
    assert ref.get_linestyle() == "--"
    assert ax.get_title() == "decay"


def test_loglog_decay_points_and_medians(frame):
    ax = plots.loglog_decay(frame, "n", "tv").axes[0]
    np.testing.assert_array_equal(ax.collections[0].get_offsets(),
                                  frame[["n", "tv"]].to_numpy())
    medians = _line(ax, "median")
    mx, my = medians.get_xdata(), medians.get_ydata()
    assert len(mx) >= 5
    assert (np.diff(mx) > 0).all()           # one median per bin, bins in order
    assert (my >= frame["tv"].min()).all() and (my <= frame["tv"].max()).all()
    # the synthetic tv decays like n^-1/2: so do the binned medians
    assert np.polyfit(np.log(mx), np.log(my), 1)[0] == pytest.approx(-0.5, abs=0.1)


def test_loglog_decay_drops_non_positive_values(frame):
    bad = frame.copy()
    bad.loc[:9, "tv"] = 0.0
    bad.loc[10:14, "n"] = 0
    ax = plots.loglog_decay(bad, "n", "tv").axes[0]
    assert len(ax.collections[0].get_offsets()) == len(frame) - 15


def test_loglog_decay_by_hue(frame):
    ax = plots.loglog_decay(frame, "n", "tv", hue="group").axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert sorted(lbl for lbl in labels if lbl.endswith("(median)")) == [
        "a (median)", "b (median)"]
    assert sum(lbl.startswith("reference") for lbl in labels) == 1
    legend = _legend_texts(ax.figure)
    assert {"a (median)", "b (median)"} <= set(legend)
    # each level's median line has the colour and the marker of its points
    assert len(ax.collections) == 2
    for points, level in zip(ax.collections, dict.fromkeys(frame["group"])):
        line = _line(ax, f"{level} (median)")
        (colour,) = {tuple(np.round(c[:3], 3)) for c in points.get_facecolors()}
        assert tuple(np.round(matplotlib.colors.to_rgb(line.get_color()), 3)) == colour
        assert len(points.get_offsets()) == (frame["group"] == level).sum()
    assert _line(ax, "a (median)").get_marker() != _line(ax, "b (median)").get_marker()
    a, b = _line(ax, "a (median)"), _line(ax, "b (median)")
    assert a.get_linestyle() != b.get_linestyle()


def test_loglog_decay_needs_positive_values(frame):
    with pytest.raises(ValueError, match=r"log-log plot needs positive values"):
        plots.loglog_decay(frame.assign(tv=0.0), "n", "tv")


# --- bad input ------------------------------------------------------------------------

CALLS = {
    "agreement": lambda df: plots.agreement(df, "empirical", "model", "n"),
    "loglog_decay": lambda df: plots.loglog_decay(df, "n", "tv"),
    "loglog_decay_hue": lambda df: plots.loglog_decay(df, "n", "tv", hue="group"),
}


@pytest.mark.parametrize("call", CALLS)
def test_empty_frame(frame, call):
    with pytest.raises(ValueError, match=r"cannot plot an empty data frame"):
        CALLS[call](frame.iloc[:0])
    assert plt.get_fignums() == []  # nothing half-drawn is left open


@pytest.mark.parametrize("call, drop", [
    ("agreement", "model"), ("agreement", "n"), ("loglog_decay", "tv"),
    ("loglog_decay_hue", "group"),
])
def test_missing_column(frame, call, drop):
    with pytest.raises(KeyError, match=rf"data frame lacks column\(s\) {drop}"):
        CALLS[call](frame.drop(columns=drop))


def test_all_missing_columns_are_named(frame):
    with pytest.raises(KeyError, match=r"lacks column\(s\) x, y"):
        plots.agreement(frame, "x", "y", "n")


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("data", [None, [1, 2, 3], {"n": [1]}])
def test_not_a_frame(call, data):
    with pytest.raises(TypeError, match=r"expected a pandas DataFrame, got "):
        CALLS[call](data)


# --- comparison -----------------------------------------------------------------------


@pytest.fixture
def long_frame() -> pd.DataFrame:
    """Three estimators x two distances, ten values each (means differ by design)."""
    rng = np.random.default_rng(1)
    estimators = np.repeat(["MAP", "LA", "Dirichlet"], 20)
    distance = np.tile(np.repeat(["family", "uniform"], 10), 3)
    shift = {"MAP": 0.1, "LA": 0.3, "Dirichlet": 0.5}
    tv = np.array([shift[e] for e in estimators]) + 0.2 * (distance == "uniform") \
        + rng.uniform(-0.05, 0.05, 60)
    return pd.DataFrame({"estimator": estimators, "distance to": distance, "TV": tv})


def _bars(ax) -> dict:
    """{(x label, hue label or None): bar height}, read off the bar containers."""
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    hues = _legend_texts(ax.figure) if ax.figure.legends else [None]
    assert len(ax.containers) == len(hues)
    bars = {}
    for hue, container in zip(hues, ax.containers):
        for rect in container:
            x = ticks[int(round(rect.get_x() + rect.get_width() / 2))]
            assert (x, hue) not in bars
            bars[(x, hue)] = rect.get_height()
    return bars


def test_comparison_with_hue(long_frame):
    fig = plots.comparison(long_frame, "estimator", "TV", hue="distance to",
                           title="shrinkage", ylabel="mean TV")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    bars = _bars(ax)
    means = long_frame.groupby(["estimator", "distance to"])["TV"].mean()
    assert len(bars) == len(means) == 6
    for (x, hue), mean in means.items():
        assert bars[(x, hue)] == pytest.approx(mean)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MAP", "LA", "Dirichlet"]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "shrinkage", "estimator", "mean TV")
    assert _legend(ax.figure).get_title().get_text() == "distance to"


def test_comparison_wraps_long_category_names():
    df = pd.DataFrame({"policy": ["TS-LA refit/50, noise by ML"] * 3 + ["greedy"] * 3,
                       "share": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    ax = plots.comparison(df, "policy", "share").axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[1] == "greedy"
    assert labels[0].replace("\n", " ") == "TS-LA refit/50, noise by ML"
    assert max(len(line) for line in labels[0].splitlines()) <= plots.WRAP


def test_comparison_without_hue(long_frame):
    ax = plots.comparison(long_frame, "estimator", "TV",
                          xlabel="estimator of p").axes[0]
    bars = _bars(ax)
    means = long_frame.groupby("estimator")["TV"].mean()
    assert len(bars) == 3
    for x, mean in means.items():
        assert bars[(x, None)] == pytest.approx(mean)
    assert not ax.figure.legends
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "estimator of p", "TV", "")


def _error_bars(ax) -> np.ndarray:
    """(low, high) of each bar's interval: the vertical segment of each error bar."""
    out = []
    for line in ax.lines:
        y = line.get_ydata()
        y = y[np.isfinite(y)]
        out.append((y.min(), y.max()))
    return np.array(out)


def test_comparison_intervals_are_seeded_and_contain_the_means(long_frame):
    ax = plots.comparison(long_frame, "estimator", "TV", hue="distance to",
                          seed=3).axes[0]
    intervals = _error_bars(ax)
    heights = [rect.get_height() for c in ax.containers for rect in c]
    assert len(intervals) == len(heights) == 6
    assert (intervals[:, 0] < heights).all() and (heights < intervals[:, 1]).all()
    # the means are 0.1 apart and the noise is +-0.05: every interval is narrower
    assert (intervals[:, 1] - intervals[:, 0] < 0.1).all()
    again = plots.comparison(long_frame, "estimator", "TV", hue="distance to",
                             seed=3).axes[0]
    np.testing.assert_array_equal(_error_bars(again), intervals)
    other = plots.comparison(long_frame, "estimator", "TV", hue="distance to",
                             seed=4).axes[0]
    assert not np.array_equal(_error_bars(other), intervals)


@pytest.mark.parametrize("drop, hue", [("TV", None), ("estimator", None),
                                       ("distance to", "distance to")])
def test_comparison_missing_column(long_frame, drop, hue):
    with pytest.raises(KeyError, match=rf"data frame lacks column\(s\) {drop}"):
        plots.comparison(long_frame.drop(columns=drop), "estimator", "TV", hue=hue)


@pytest.mark.parametrize("hue", [None, "distance to"])
def test_comparison_empty_frame(long_frame, hue):
    with pytest.raises(ValueError, match=r"cannot plot an empty data frame"):
        plots.comparison(long_frame.iloc[:0], "estimator", "TV", hue=hue)
    assert plt.get_fignums() == []


def test_comparison_not_a_frame():
    with pytest.raises(TypeError, match=r"expected a pandas DataFrame, got list"):
        plots.comparison([1, 2, 3], "estimator", "TV")


# --- comparison: the reference line ---------------------------------------------------


def _reference(ax):
    found = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(found) == 1, [line.get_label() for line in ax.lines]
    return found[0]


@pytest.mark.parametrize("hue", [None, "distance to"])
@pytest.mark.parametrize("reference", [0.0, 0.35, -1.5])
def test_comparison_reference_line(long_frame, hue, reference):
    ax = plots.comparison(long_frame, "estimator", "TV", hue=hue, reference=reference,
                          reference_label="monofact rate").axes[0]
    line = _reference(ax)
    np.testing.assert_array_equal(line.get_ydata(), [reference, reference])
    # axes coordinates: the full width
    np.testing.assert_array_equal(line.get_xdata(), [0, 1])
    assert line.get_label() == "monofact rate"
    legend = _legend_texts(ax.figure)
    assert "monofact rate" in legend
    if hue:
        assert {"family", "uniform"} <= set(legend)
        assert _legend(ax.figure).get_title().get_text() == "distance to"
    # the bars are unchanged by the line
    plain = plots.comparison(long_frame, "estimator", "TV", hue=hue).axes[0]
    assert len(ax.containers) == len(plain.containers) == (2 if hue else 1)
    assert [r.get_height() for c in ax.containers for r in c] == [
        r.get_height() for c in plain.containers for r in c]


def test_comparison_reference_without_label(long_frame):
    ax = plots.comparison(long_frame, "estimator", "TV", reference=0.2).axes[0]
    line = _reference(ax)
    np.testing.assert_array_equal(line.get_ydata(), [0.2, 0.2])
    assert line.get_label().startswith("_")  # not in any legend
    assert not ax.figure.legends
    ax = plots.comparison(long_frame, "estimator", "TV", hue="distance to",
                          reference=0.2).axes[0]
    assert _legend_texts(ax.figure) == ["family", "uniform"]


@pytest.mark.filterwarnings("ignore:No artists with labels found:UserWarning")
def test_comparison_without_reference_draws_no_line(long_frame):
    ax = plots.comparison(long_frame, "estimator", "TV",
                          reference_label="ignored").axes[0]
    assert not any(line.get_linestyle() == "--" for line in ax.lines)
    assert all(line.get_label() != "ignored" for line in ax.lines)


@pytest.mark.filterwarnings("error:No artists with labels found:UserWarning")
def test_comparison_label_without_reference_makes_no_legend(long_frame):
    ax = plots.comparison(long_frame, "estimator", "TV",
                          reference_label="ignored").axes[0]
    assert not ax.figure.legends


# --- curves ---------------------------------------------------------------------------


@pytest.fixture
def curve_frame() -> pd.DataFrame:
    """Three curves, one row per x."""
    x = np.linspace(0, 1, 11)
    return pd.concat([pd.DataFrame({"x": x, "y": x**k, "curve": f"power {k}"})
                      for k in (1, 2, 3)], ignore_index=True)


@pytest.fixture
def seed_frame() -> pd.DataFrame:
    """Two models x five seeds x eight thresholds: repeated x within each hue level."""
    rng = np.random.default_rng(2)
    t = np.linspace(0, 1, 8)
    rows = [pd.DataFrame({"threshold": t, "score": base - t + rng.normal(0, 0.05, 8),
                          "seed": seed, "model": model})
            for model, base in (("MAP", 0.0), ("LA", 0.5)) for seed in range(5)]
    return pd.concat(rows, ignore_index=True)


def _drawn_lines(ax):
    """The lines that carry data (seaborn's legend proxies are empty)."""
    return [line for line in ax.lines if len(line.get_xdata())
            and line.get_label() != "chance"]


def _bands(ax):
    return [c for c in ax.collections if len(c.get_paths())]


def test_curves_one_line_per_hue(curve_frame):
    fig = plots.curves(curve_frame, "x", "y", hue="curve", title="powers", xlabel="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    lines = _drawn_lines(ax)
    assert len(lines) == 3
    for line, k in zip(lines, (1, 2, 3)):
        np.testing.assert_allclose(line.get_xdata(), np.linspace(0, 1, 11))
        np.testing.assert_allclose(line.get_ydata(), np.linspace(0, 1, 11) ** k)
    assert _bands(ax) == []  # one row per x: nothing to bootstrap
    assert _legend_texts(ax.figure) == ["power 1", "power 2",
                                                                   "power 3"]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("powers", "t", "y")
    assert ax.get_xscale() == "linear"
    assert not any(line.get_label() == "chance" for line in ax.lines)


def test_curves_log_axes(curve_frame):
    positive = curve_frame[curve_frame["x"] > 0]
    ax = plots.curves(positive, "x", "y", hue="curve", logx=True, logy=True).axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert plots.curves(positive, "x", "y", logx=True).axes[0].get_yscale() == "linear"


def test_curves_diagonal(curve_frame):
    ax = plots.curves(curve_frame, "x", "y", hue="curve", diagonal=True).axes[0]
    assert len(_drawn_lines(ax)) == 3
    chance = _line(ax, "chance")
    np.testing.assert_array_equal(chance.get_xdata(), [0, 1])
    np.testing.assert_array_equal(chance.get_ydata(), [0, 1])
    assert "chance" in _legend_texts(ax.figure)


def test_curves_without_hue(curve_frame):
    one = curve_frame[curve_frame["curve"] == "power 2"]
    ax = plots.curves(one, "x", "y").axes[0]
    assert len(_drawn_lines(ax)) == 1
    assert not ax.figure.legends
    ax = plots.curves(one, "x", "y", diagonal=True).axes[0]
    assert _legend_texts(ax.figure) == ["chance"]


def test_curves_band_over_seeds(seed_frame):
    ax = plots.curves(seed_frame, "threshold", "score", hue="model", seed=1,
                      logx=True).axes[0]
    assert ax.get_xscale() == "log"
    lines, bands = _drawn_lines(ax), _bands(ax)
    assert len(lines) == 2 and len(bands) == 2
    means = seed_frame.groupby(["model", "threshold"], sort=False)["score"].mean()
    for line, band, model in zip(lines, bands, ("MAP", "LA")):
        np.testing.assert_allclose(line.get_ydata(), means[model].to_numpy())
        # the band surrounds the mean and lies within the seeds' range
        v = band.get_paths()[0].vertices
        scores = seed_frame[seed_frame["model"] == model]["score"]
        assert v[:, 1].min() >= scores.min() - 1e-12
        assert v[:, 1].max() <= scores.max() + 1e-12
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            at = v[np.isclose(v[:, 0], x), 1]
            assert at.min() <= y <= at.max() and at.max() > at.min()


def _band_vertices(ax):
    return [c.get_paths()[0].vertices for c in _bands(ax)]


def test_curves_band_is_seeded(seed_frame):
    first = _band_vertices(plots.curves(seed_frame, "threshold", "score", hue="model",
                                        seed=3).axes[0])
    again = _band_vertices(plots.curves(seed_frame, "threshold", "score", hue="model",
                                        seed=3).axes[0])
    other = _band_vertices(plots.curves(seed_frame, "threshold", "score", hue="model",
                                        seed=4).axes[0])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_curves_draws_a_roc_curve_as_given():
    roc = pd.DataFrame({"fpr": [0.0, 0.0, 0.5, 0.5, 1.0],
                        "tpr": [0.0, 0.5, 0.5, 1.0, 1.0], "score": "s"})
    ax = plots.curves(roc, "fpr", "tpr", hue="score", diagonal=True,
                      aggregate=False).axes[0]
    (line,) = _drawn_lines(ax)
    np.testing.assert_array_equal(line.get_xdata(), roc["fpr"])
    np.testing.assert_array_equal(line.get_ydata(), roc["tpr"])


@pytest.mark.parametrize("drop, hue", [("x", None), ("y", None), ("curve", "curve")])
def test_curves_missing_column(curve_frame, drop, hue):
    with pytest.raises(KeyError, match=rf"data frame lacks column\(s\) {drop}"):
        plots.curves(curve_frame.drop(columns=drop), "x", "y", hue=hue)


def test_curves_empty_or_not_a_frame(curve_frame):
    with pytest.raises(ValueError, match=r"cannot plot an empty data frame"):
        plots.curves(curve_frame.iloc[:0], "x", "y", hue="curve")
    with pytest.raises(TypeError, match=r"expected a pandas DataFrame, got list"):
        plots.curves([1, 2], "x", "y")
    assert plt.get_fignums() == []


def test_curves_one_panel_per_col(seed_frame):
    shifted = seed_frame.assign(world="full", score=seed_frame["score"] + 1)
    df = pd.concat([seed_frame.assign(world="quick"), shifted])
    fig = plots.curves(df, "threshold", "score", hue="model", col="world",
                       title="policies")
    assert len(fig.axes) == 2
    # first-appearance order
    assert [ax.get_title() for ax in fig.axes] == ["quick", "full"]
    assert fig._suptitle is not None and fig._suptitle.get_text() == "policies"
    assert _legend_texts(fig) == ["MAP", "LA"]  # one legend for both panels
    for ax, shift in zip(fig.axes, (0, 1)):
        lines = _drawn_lines(ax)
        assert len(lines) == 2 and len(_bands(ax)) == 2
        means = seed_frame.groupby(["model", "threshold"],
                                   sort=False)["score"].mean() + shift
        for line, model in zip(lines, ("MAP", "LA")):
            np.testing.assert_allclose(line.get_ydata(), means[model].to_numpy())
    with pytest.raises(KeyError, match=r"data frame lacks column\(s\) world"):
        plots.curves(seed_frame, "threshold", "score", col="world")


# --- power_laws -----------------------------------------------------------------------

LAWS = {("MAP", 0): (2.0, -0.5), ("MAP", 1): (2.5, -0.5), ("LA", 0): (1.0, -1.0),
        ("LA", 1): (0.8, -1.0)}


@pytest.fixture
def law_frame() -> pd.DataFrame:
    """y = a N^b per (model, seed), N on a log grid: each group an exact power law."""
    n = np.logspace(3, 6, 7)
    return pd.concat([pd.DataFrame({"N": n, "kl": a * n**b, "model": model,
                                    "seed": seed})
                      for (model, seed), (a, b) in LAWS.items()], ignore_index=True)


def _fitted(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.lines if "slope" in line.get_label()}


def _slope_in(label: str) -> float:
    return float(label.rsplit("slope ", 1)[1])


def test_power_laws_one_fit_per_group(law_frame):
    fig = plots.power_laws(law_frame, "N", "kl", hue="model", style="seed",
                           title="washout", ylabel="KL")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("washout", "N", "KL")
    fits = _fitted(ax)
    assert sorted(fits) == sorted(f"{m}, {s}: slope {b:.2f}"
                                  for (m, s), (_, b) in LAWS.items())
    for (model, seed), (a, b) in LAWS.items():
        line = fits[f"{model}, {seed}: slope {b:.2f}"]
        assert _slope_in(line.get_label()) == pytest.approx(b)
        x, y = line.get_xdata(), line.get_ydata()
        assert x.min() == pytest.approx(1e3) and x.max() == pytest.approx(1e6)
        # the fitted law is the data's
        np.testing.assert_allclose(y, a * x**b, rtol=1e-8)
    # one colour per model, one dash per seed
    colour = {lbl: mpl.colors.to_hex(line.get_color()) for lbl, line in fits.items()}
    dash = {lbl: line.get_linestyle() for lbl, line in fits.items()}
    assert colour["MAP, 0: slope -0.50"] == colour["MAP, 1: slope -0.50"]
    assert colour["LA, 0: slope -1.00"] == colour["LA, 1: slope -1.00"]
    assert colour["MAP, 0: slope -0.50"] != colour["LA, 0: slope -1.00"]
    assert dash["MAP, 0: slope -0.50"] == dash["LA, 0: slope -1.00"]
    assert dash["MAP, 0: slope -0.50"] != dash["MAP, 1: slope -0.50"]
    # the legend has a column per seed, headed by its look, and every fit's slope
    assert sorted(_legend_texts(fig)) == sorted(
        ["0:", "1:"] + [f"{m}: {b:.2f}" for (m, _), (_, b) in LAWS.items()])
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(points) == len(law_frame)


def test_power_laws_without_style(law_frame):
    one = law_frame[law_frame["seed"] == 0]
    ax = plots.power_laws(one, "N", "kl", hue="model").axes[0]
    fits = _fitted(ax)
    assert sorted(fits) == ["LA: slope -1.00", "MAP: slope -0.50"]
    # without style, each model has its own line style (and colour, and marker)
    assert [fits[k].get_linestyle() for k in ("MAP: slope -0.50", "LA: slope -1.00")] \
        == ["-", "--"]


def test_power_laws_noisy_slope(rng):
    n = np.logspace(2, 6, 40)
    df = pd.DataFrame({"N": n, "g": 3.0 * n**-0.7 * np.exp(rng.normal(0, 0.05, n.size)),
                       "model": "LA"})
    (label,) = _fitted(plots.power_laws(df, "N", "g", hue="model").axes[0])
    assert _slope_in(label) == pytest.approx(-0.7, abs=0.03)


def test_power_laws_drops_non_positive_values(law_frame):
    bad = law_frame.copy()
    bad.loc[0, "kl"] = 0.0
    bad.loc[1, "kl"] = -1.0
    bad.loc[2, "N"] = 0.0
    ax = plots.power_laws(bad, "N", "kl", hue="model", style="seed").axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(points) == len(law_frame) - 3
    assert (points > 0).all()
    fits = _fitted(ax)
    assert len(fits) == 4
    for label in fits:  # the remaining points still lie on exact laws
        assert _slope_in(label) in {-0.5, -1.0}


def test_power_laws_skips_groups_with_one_x(law_frame):
    df = pd.concat([law_frame, pd.DataFrame({"N": [1e4], "kl": [0.1],
                                             "model": "Dirichlet", "seed": 0})],
                   ignore_index=True)
    ax = plots.power_laws(df, "N", "kl", hue="model", style="seed").axes[0]
    assert len(_fitted(ax)) == 4
    assert not any(lbl.startswith("Dirichlet") for lbl in _fitted(ax))
    # but its point is drawn and the legend names it
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert [1e4, 0.1] in points.tolist()
    assert "Dirichlet: no fit (a single x value)" in _legend_texts(ax.figure)


def test_power_laws_needs_positive_values(law_frame):
    with pytest.raises(ValueError, match=r"log-log plot needs positive values"):
        plots.power_laws(law_frame.assign(kl=-law_frame["kl"]), "N", "kl", hue="model")
    with pytest.raises(ValueError, match=r"log-log plot needs positive values"):
        plots.power_laws(law_frame.assign(N=0.0), "N", "kl", hue="model")


@pytest.mark.parametrize("drop, style", [("N", None), ("kl", None), ("model", None),
                                         ("seed", "seed")])
def test_power_laws_missing_column(law_frame, drop, style):
    with pytest.raises(KeyError, match=rf"data frame lacks column\(s\) {drop}"):
        plots.power_laws(law_frame.drop(columns=drop), "N", "kl", hue="model",
                         style=style)


def test_power_laws_empty_or_not_a_frame(law_frame):
    with pytest.raises(ValueError, match=r"cannot plot an empty data frame"):
        plots.power_laws(law_frame.iloc[:0], "N", "kl", hue="model")
    with pytest.raises(TypeError, match=r"expected a pandas DataFrame, got list"):
        plots.power_laws([1, 2], "N", "kl", hue="model")



def _reference_lines(ax, value):
    """Horizontal lines across the axes (axes coordinates 0..1) at ``value``."""
    return [line for line in ax.lines if list(line.get_xdata()) == [0, 1]
            and list(line.get_ydata()) == [value, value]]


@pytest.mark.parametrize("style", [None, "seed"])
def test_power_laws_reference_line(law_frame, style):
    ax = plots.power_laws(law_frame, "N", "kl", hue="model", style=style,
                          reference=0.05, reference_label="threshold").axes[0]
    (line,) = _reference_lines(ax, 0.05)
    assert line.get_label() == "threshold"
    assert "threshold" in _legend_texts(ax.figure)
    # the fits are unchanged by the line
    plain = plots.power_laws(law_frame, "N", "kl", hue="model", style=style).axes[0]
    assert sorted(_fitted(ax)) == sorted(_fitted(plain))
    assert not _reference_lines(plain, 0.05)


def test_power_laws_reference_without_label(law_frame):
    ax = plots.power_laws(law_frame, "N", "kl", hue="model", reference=3.0).axes[0]
    (line,) = _reference_lines(ax, 3.0)
    assert line.get_label().startswith("_")  # not in the legend
    assert _legend_texts(ax.figure) == ["MAP: -0.50", "LA: -1.00"]  # no threshold entry


@pytest.mark.parametrize("reference", [0.0, -1.0, float("nan")])
def test_power_laws_rejects_a_non_positive_reference(law_frame, reference):
    with pytest.raises(ValueError,
                       match=r"reference line on log axes must be positive"):
        plots.power_laws(law_frame, "N", "kl", hue="model", reference=reference)


# --- pareto ---------------------------------------------------------------------------


@pytest.fixture
def pareto_frame() -> pd.DataFrame:
    """Methods with a cost (lower is better) and a quality (higher is better)."""
    rows = [("cheap", 0.5, 0.50, "MAP"), ("A", 1.0, 0.70, "Laplace"),
            ("worse than A", 1.4, 0.60, "Laplace"), ("C", 2.0, 0.80, "ensemble"),
            ("same cost as C", 2.0, 0.75, "Laplace"),
            ("same quality as C", 3.0, 0.80, "ensemble"),
            ("F", 4.0, 0.85, "ensemble"), ("best", 5.0, 0.90, "ensemble"),
            ("worst", 6.0, 0.40, "Laplace")]
    return pd.DataFrame(rows, columns=["method", "compute", "auroc", "kind"])


def _non_dominated(df, x, y):
    """Rows that no other row matches or beats on both and beats on one (brute
    force)."""
    keep = []
    for i, row in df.iterrows():
        beaten = any((other[x] <= row[x] and other[y] >= row[y])
                     and (other[x] < row[x] or other[y] > row[y])
                     for j, other in df.iterrows() if j != i)
        if not beaten:
            keep.append(i)
    return df.loc[keep].sort_values(x)


def _frontier(ax):
    (line,) = [line for line in ax.lines if line.get_label() == "Pareto frontier"]
    return line


def test_pareto_draws_points_labels_and_the_frontier(pareto_frame):
    fig = plots.pareto(pareto_frame, "compute", "auroc", label="method", hue="kind",
                       title="quality against compute", xlabel="trainings",
                       ylabel="AUROC")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "quality against compute", "trainings", "AUROC")
    assert ax.get_xscale() == "linear"
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert sorted(map(tuple, points)) == sorted(
        zip(pareto_frame["compute"], pareto_frame["auroc"]))
    labels = {t.get_text().replace("\n", " "): t.xy for t in ax.texts}
    rows = pareto_frame[["method", "compute", "auroc"]].itertuples(index=False)
    assert labels == {m: (c, a) for m, c, a in rows}
    front = _non_dominated(pareto_frame, "compute", "auroc")
    assert list(front["method"]) == ["cheap", "A", "C", "F", "best"]
    line = _frontier(ax)
    assert line.get_drawstyle() == "steps-post"
    np.testing.assert_array_equal(line.get_xdata(), front["compute"])
    np.testing.assert_array_equal(line.get_ydata(), front["auroc"])
    legend = _legend_texts(ax.figure)
    assert "Pareto frontier" in legend and {"MAP", "Laplace", "ensemble"} <= set(legend)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pareto_frontier_is_the_non_dominated_rows(seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"cost": rng.uniform(1, 10, 30).round(1),
                       "quality": rng.uniform(0.5, 1, 30).round(2),
                       "name": [f"m{i}" for i in range(30)], "kind": "x"})
    df = df.drop_duplicates(["cost", "quality"])  # a repeated point is one point
    line = _frontier(plots.pareto(df, "cost", "quality", label="name",
                                  hue="kind").axes[0])
    front = _non_dominated(df, "cost", "quality")
    np.testing.assert_array_equal(line.get_xdata(), front["cost"])
    np.testing.assert_array_equal(line.get_ydata(), front["quality"])
    # along the frontier cost rises and quality rises strictly
    assert (np.diff(line.get_xdata()) > 0).all()
    assert (np.diff(line.get_ydata()) > 0).all()


def test_pareto_log_axis_and_one_row(pareto_frame):
    ax = plots.pareto(pareto_frame, "compute", "auroc", label="method", hue="kind",
                      logx=True).axes[0]
    assert ax.get_xscale() == "log"
    (x, y) = ax.get_xlabel(), ax.get_ylabel()
    assert (x, y) == ("compute", "auroc")
    one = pareto_frame.iloc[[3]]
    line = _frontier(plots.pareto(one, "compute", "auroc", label="method",
                                  hue="kind").axes[0])
    assert list(line.get_xdata()) == [2.0] and list(line.get_ydata()) == [0.8]


@pytest.mark.parametrize("drop", ["compute", "auroc", "method", "kind"])
def test_pareto_missing_column(pareto_frame, drop):
    with pytest.raises(KeyError, match=rf"data frame lacks column\(s\) {drop}"):
        plots.pareto(pareto_frame.drop(columns=drop), "compute", "auroc",
                     label="method", hue="kind")


def test_pareto_empty_or_not_a_frame(pareto_frame):
    with pytest.raises(ValueError, match=r"cannot plot an empty data frame"):
        plots.pareto(pareto_frame.iloc[:0], "compute", "auroc", label="method",
                     hue="kind")
    with pytest.raises(TypeError, match=r"expected a pandas DataFrame, got list"):
        plots.pareto([1, 2], "compute", "auroc", label="method", hue="kind")


# --- reliability ----------------------------------------------------------------------


@pytest.fixture
def bins_frame() -> pd.DataFrame:
    """Reliability bins of two seeds at two stages."""
    rows = []
    for stage, shift in (("before", 0.0), ("after", -0.2)):
        for seed in (0, 1):
            confidence = np.array([0.3, 0.6, 0.95])
            rows.append(pd.DataFrame({"confidence": confidence,
                                      "accuracy": np.clip(confidence + shift
                                                          + 0.01 * seed, 0, 1),
                                      "share": [0.1, 0.2, 0.7], "stage": stage,
                                      "seed": f"seed {seed}"}))
    return pd.concat(rows, ignore_index=True)


def test_reliability_panels_lines_and_point_sizes(bins_frame):
    fig = plots.reliability(bins_frame, "confidence", "accuracy", weight="share",
                            col="stage", hue="seed", title="T", xlabel="conf")
    assert [ax.get_title() for ax in fig.axes] == ["before", "after"]
    assert fig._suptitle.get_text() == "T"
    for ax, stage in zip(fig.axes, ("before", "after")):
        diagonal = _line(ax, "perfect calibration")
        np.testing.assert_array_equal(diagonal.get_xdata(), [0, 1])
        np.testing.assert_array_equal(diagonal.get_ydata(), [0, 1])
        lines = [line for line in ax.lines if line.get_label().startswith("seed")]
        assert len(lines) == 2
        for line, seed in zip(lines, ("seed 0", "seed 1")):
            rows = bins_frame[(bins_frame["stage"] == stage)
                              & (bins_frame["seed"] == seed)]
            np.testing.assert_allclose(line.get_xdata(), rows["confidence"])
            np.testing.assert_allclose(line.get_ydata(), rows["accuracy"])
        points = ax.collections
        assert len(points) == 2
        np.testing.assert_allclose(points[0].get_sizes(),
                                   8 + 240 * np.array([0.1, 0.2, 0.7]) / 0.7)
        assert ax.get_xlim() == pytest.approx((-0.02, 1.02))
        assert ax.get_xlabel() == "conf"
    assert fig.axes[0].get_ylabel() == "accuracy" and fig.axes[1].get_ylabel() == ""
    legend = _legend_texts(fig)
    assert legend == ["perfect calibration", "seed 0", "seed 1"]


def test_reliability_single_panel_without_hue(bins_frame):
    one = bins_frame[(bins_frame["stage"] == "before")
                     & (bins_frame["seed"] == "seed 0")]
    fig = plots.reliability(one.sample(frac=1, random_state=0), "confidence",
                            "accuracy", weight="share", title="one")
    (ax,) = fig.axes
    assert ax.get_title() == "one"
    (line,) = [line for line in ax.lines if line.get_label() != "perfect calibration"]
    # drawn in confidence order
    np.testing.assert_allclose(line.get_xdata(), [0.3, 0.6, 0.95])


def test_reliability_checks_its_input(bins_frame):
    with pytest.raises(KeyError, match=r"data frame lacks column\(s\) share"):
        plots.reliability(bins_frame.drop(columns="share"), "confidence", "accuracy",
                          weight="share")
    with pytest.raises(ValueError, match=r"cannot plot an empty data frame"):
        plots.reliability(bins_frame.iloc[:0], "confidence", "accuracy", weight="share")
    assert plt.get_fignums() == []


def test_verdict_tiles_one_tile_per_claim_with_its_symbol():
    df = pd.DataFrame({"group": ["a", "a", "a", "b"], "column": [0, 0, 1, 0],
                       "round": [1, 2, 2, 1], "id": ["C1", "C3", "C4", "C2"],
                       "verdict": ["SUPPORTED", "REFUTED", "not yet tested",
                                   "INCONCLUSIVE"]})
    fig = plots.verdict_tiles(df, title="at a glance")
    ax = fig.axes[0]
    tiles = [p for p in ax.patches if isinstance(p, matplotlib.patches.FancyBboxPatch)]
    assert len(tiles) == 4
    faces = sorted(matplotlib.colors.to_hex(p.get_facecolor()) for p in tiles)
    expected = [plots.VERDICT_STYLE[v][0].lower()
                for v in ("SUPPORTED", "REFUTED", "INCONCLUSIVE")] + ["#ffffff"]
    assert faces == sorted(expected)
    texts = {t.get_text() for t in ax.texts}
    assert {"C1\n\N{CHECK MARK}", "C3\n\N{BALLOT X}", "C2\n?", "a", "b", "round 1",
            "round 2"} <= texts
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["\N{CHECK MARK} SUPPORTED", "\N{BALLOT X} REFUTED",
                      "? INCONCLUSIVE", "\N{EM DASH} not yet tested"]
    assert ax.get_title() == "at a glance"
    # the legend lies below the tiles, the texts are readable, the figure fits
    renderer = _renderer(fig)
    box = ax.get_legend().get_window_extent(renderer)
    assert not any(box.overlaps(tile.get_window_extent(renderer)) for tile in tiles)
    assert min(t.get_fontsize() for t in ax.texts) >= 9
    assert fig.get_figwidth() <= plots.MAX_WIDTH


# --- log axes -------------------------------------------------------------------------


@pytest.mark.parametrize("low, high, expected", [
    (0.4, 3.0, {"0.5", "1", "2", "3"}),
    (0.6, 0.9, {"0.6", "0.7", "0.8", "0.9"}),
    (2.0, 80.0, {"2", "5", "10", "20", "50"}),
    (1.0, 500.0, {"1", "10", "100"}),
    (1e3, 3e4, {"1000", "2000", "5000", "10000", "20000"}),
    (1e2, 1e6, {"$10^{2}$", "$10^{3}$", "$10^{4}$", "$10^{5}$", "$10^{6}$"}),
])
def test_log_ticks_are_plain_numbers(low, high, expected):
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [low, high], "kind": "a"})
    ax = plots.curves(df, "x", "y", logy=True, aggregate=False).axes[0]
    ax.set_ylim(low, high)
    _renderer(ax.figure)
    shown = {t.get_text() for t in ax.get_yticklabels() + ax.get_yminorticklabels()
             if t.get_text() and low <= t.get_position()[1] <= high}
    assert shown == expected


# --- loglog_stages --------------------------------------------------------------------


def test_loglog_stages_one_median_line_per_stage_in_its_colour():
    df = _stages()
    fig = plots.loglog_stages(df, "pulls", "std", stage="step", col="environment",
                              stage_label="refit at round", title="T", ylabel="std")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in axes] == ["wheel", "digits"]
    assert fig._suptitle.get_text() == "T"
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylabel() == "refit at round"
    cmap = matplotlib.colormaps[plots.PALETTE]
    for ax, env in zip(axes, ("wheel", "digits")):
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        part = df[df["environment"] == env]
        # every point drawn once, coloured by its stage
        (points,) = ax.collections
        np.testing.assert_array_equal(points.get_offsets(), part[["pulls", "std"]])
        np.testing.assert_array_equal(points.get_array(), part["step"])
        for step in (10, 60, 110, 160):
            line = _line(ax, f"step {step} (median)")
            assert mpl.colors.to_hex(line.get_color()) == mpl.colors.to_hex(
                cmap((step - 10) / 150))
            rows = part[part["step"] == step]
            # binned medians of the stage's own points, falling like its points do
            assert rows["pulls"].min() <= line.get_xdata().min()
            assert line.get_xdata().max() <= rows["pulls"].max()
            assert (np.diff(line.get_xdata()) > 0).all()
            assert (np.diff(line.get_ydata()) < 0).all()
        # the first and the last stage are named at their ends
        assert sorted(t.get_text() for t in ax.texts) == ["10", "160"]
        assert _line(ax, "reference").get_linestyle() == "--"
    assert _legend_texts(fig) == ["binned medians, one line per colour",
                                  "reference $n^{-0.5}$"]


def test_loglog_stages_checks_its_input():
    with pytest.raises(TypeError, match=r"stage column 'environment' must be numeric"):
        plots.loglog_stages(_stages(), "pulls", "std", stage="environment")
    with pytest.raises(KeyError, match=r"data frame lacks column\(s\) round"):
        plots.loglog_stages(_stages(), "pulls", "std", stage="round")
    with pytest.raises(ValueError, match=r"log-log plot needs positive values"):
        plots.loglog_stages(_stages().assign(std=0.0), "pulls", "std", stage="step")


# --- curves: bands given, styles, references, grids -----------------------------------


def test_curves_draw_a_given_interval():
    df = pd.DataFrame({"x": [3, 1, 2, 1, 2, 3], "y": [0.3, 0.1, 0.2, 1.0, 2.0, 3.0],
                       "low": [0.2, 0.0, 0.1, np.nan, np.nan, np.nan],
                       "high": [0.4, 0.2, 0.3, np.nan, np.nan, np.nan],
                       "what": ["a"] * 3 + ["b"] * 3})
    ax = plots.curves(df, "x", "y", hue="what", interval=("low", "high")).axes[0]
    a, b = _drawn_lines(ax)
    np.testing.assert_array_equal(a.get_xdata(), [1, 2, 3])  # drawn in x order
    np.testing.assert_array_equal(a.get_ydata(), [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(b.get_ydata(), [1.0, 2.0, 3.0])
    (band,) = _bands(ax)  # b has no interval: no band
    v = band.get_paths()[0].vertices
    assert v[:, 1].min() == pytest.approx(0.0) and v[:, 1].max() == pytest.approx(0.4)
    with pytest.raises(KeyError, match=r"lacks column\(s\) high"):
        plots.curves(df.drop(columns="high"), "x", "y", interval=("low", "high"))


def test_curves_style_gives_the_line_style_and_hue_the_colour():
    fig = plots.curves(_seed_curves(), "t", "v", hue="model", style="kind", col="world")
    for ax in fig.axes:
        lines = {line.get_label(): line for line in _drawn_lines(ax)}
        assert len(lines) == 10
        for k in range(5):
            measured, fit = lines[f"model {k}, measured"], lines[f"model {k}, fit"]
            assert measured.get_color() == fit.get_color() == plots.OKABE_ITO[k]
            assert measured.get_marker() == fit.get_marker() == plots.MARKERS[k]
            assert (measured.get_linestyle(), fit.get_linestyle()) == ("-", "--")


def test_curves_references_in_every_panel_and_the_legend():
    fig = plots.curves(_seed_curves(), "t", "v", hue="model", col="world",
                       references={"one": 1.0, "threshold": 0.7})
    for ax in fig.axes:
        one, threshold = _line(ax, "one"), _line(ax, "threshold")
        assert list(one.get_ydata()) == [1.0, 1.0] and list(one.get_xdata()) == [0, 1]
        assert list(threshold.get_ydata()) == [0.7, 0.7]
        assert one.get_linestyle() != threshold.get_linestyle()
    assert _legend_texts(fig)[-2:] == ["one", "threshold"]
    too_many = {str(i): float(i) for i in range(len(plots.REFERENCE_STYLES) + 1)}
    with pytest.raises(ValueError, match=r"at most 4 reference lines, got 5"):
        plots.curves(_seed_curves(), "t", "v", references=too_many)


def test_curves_wrap_panels_and_use_the_empty_cell_for_the_legend():
    fig = FIGURES["curves_three_panels"]()
    assert len(fig.axes) == 3 and fig.get_figwidth() == plots.MAX_WIDTH
    renderer = _renderer(fig)
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes]
    # two panels on the first row, one below the first
    assert boxes[0].y0 == pytest.approx(boxes[1].y0) and boxes[2].y1 < boxes[0].y0
    assert boxes[2].x0 == pytest.approx(boxes[0].x0)
    legend = _legend(fig).get_window_extent(renderer)
    assert legend.x0 > boxes[2].x1 and legend.y1 < boxes[1].y0  # in the empty cell
    assert [ax.get_ylabel() for ax in fig.axes] == ["v", "", "v"]
    # one column of panels: stacked, the legend below them
    fig = plots.curves(_seed_curves(), "t", "v", hue="model", col="world", ncols=1)
    renderer = _renderer(fig)
    top, bottom = (ax.get_window_extent(renderer) for ax in fig.axes)
    assert bottom.y1 < top.y0
    assert _legend(fig).get_window_extent(renderer).y1 < bottom.y0


def test_long_axis_labels_are_wrapped_to_their_axes():
    label = "a very long label " * 6
    fig = plots.curves(_seed_curves(), "t", "v", hue="model", col="world", ylabel=label)
    renderer = _renderer(fig)
    ax = fig.axes[0]
    assert "\n" in ax.get_ylabel()
    assert ax.yaxis.label.get_window_extent(renderer).height <= \
        ax.get_window_extent(renderer).height


# --- comparison: hatches --------------------------------------------------------------


def test_comparison_gives_each_hue_level_its_hatch():
    ax = FIGURES["comparison"]().axes[0]
    assert len(ax.containers) == 4
    hatches = [{bar.get_hatch() for bar in container} for container in ax.containers]
    assert all(len(h) == 1 for h in hatches)
    assert [h.pop() or "" for h in hatches] == list(plots.HATCHES[:4])


# --- pareto: the rule's region and the labels -----------------------------------------


def test_pareto_shades_the_region_and_keeps_labels_apart():
    fig = FIGURES["pareto"]()
    ax = fig.axes[0]
    (region,) = [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]
    assert (region.get_x(), region.get_y()) == (0, 0.85)
    assert (region.get_width(), region.get_height()) == pytest.approx((1.0, 0.15))
    assert region.get_hatch() == "//"
    assert ax.get_xlim()[0] <= 0 and ax.get_ylim()[1] >= 1.0  # all of it in view
    assert _legend_texts(fig)[0] == "rule holds"
    renderer = _renderer(fig)
    frame = ax.get_window_extent(renderer)
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == len(_front())
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1
    # a bracketed note goes on a line of its own
    assert "LA kron\n(1 - max p)" in [t.get_text() for t in ax.texts]
    # the frontier: one ring around MAP, which beats all others
    line = _frontier(ax)
    assert list(line.get_xdata()) == [1.0] and line.get_markerfacecolor() == "none"


# --- the book's captions name their helper --------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(ROOT.glob("chapters/*.md")) + [ROOT / "index.md"]
DRAWN_BY = re.compile(r"Drawn by\s+\{py:func\}`~bayes_at_scale\.book\.plots\.(\w+)`")


def _glued_figures(text: str) -> list[tuple[str, str]]:
    """(glued name, caption) of every ``{glue:figure}`` block of a page."""
    return re.findall(r"^```\{glue:figure\}[ \t]+(\S+)\n(.*?)^```", text, re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_caption_ends_by_naming_the_helper_that_drew_it(page):
    text = page.read_text(encoding="utf8")
    for name, body in _glued_figures(text):
        caption = " ".join(line for line in body.splitlines()
                           if line.strip() and not line.startswith(":"))
        found = DRAWN_BY.findall(caption)
        assert found, f"{page.name}: the caption of {name} names no plots helper"
        assert caption.rstrip().endswith(".") and DRAWN_BY.search(
            caption[caption.rindex("Drawn by"):]), f"{page.name}: {name}"
        helper = found[-1]
        assert callable(getattr(plots, helper, None)), f"{name}: no plots.{helper}"
        # and it is the helper the page last calls before gluing the figure
        glued = re.search(rf'glue\(\s*"{re.escape(name)}"\s*,', text)
        end = text.index("display=False", glued.end())
        calls = [c for c in re.findall(r"plots\.(\w+)\(", text[:end])
                 if c != "set_theme"]
        assert calls and calls[-1] == helper, f"{page.name}: {name} is drawn by " \
            f"{calls[-1] if calls else None}, the caption says {helper}"
