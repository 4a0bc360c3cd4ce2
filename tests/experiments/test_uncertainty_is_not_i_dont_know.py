"""Tests of bayes_at_scale.experiments.uncertainty_is_not_i_dont_know (chapter 4's experiment).

``run_facts`` trains on the settings' recipes, far too big for a unit test, so one tiny fact world
(80 entities, some unseen, some unknown, three misinformation entities) gets a tiny CausalLM
trained for a few full-batch steps and the default last-layer KFAC posterior, all once per
module; the query tables come from ``answer_table`` and are put into a ``FactReplicate`` by
hand.  The claim statistics (C6-C9) are also checked on hand-made replicates whose answers are
known in closed form.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayes_at_scale.worlds import facts
from bayes_at_scale.experiments import uncertainty_is_not_i_dont_know as hallucination
from bayes_at_scale.core import answer_posteriors, metrics
from bayes_at_scale.core import models
from bayes_at_scale.core import posteriors
from bayes_at_scale.core import settings
from bayes_at_scale.core import training
from bayes_at_scale.worlds.fragments import count_bucket
from bayes_at_scale.experiments.uncertainty_is_not_i_dont_know import FactReplicate

pytestmark = [
    pytest.mark.filterwarnings("ignore:By default `link_approx` is `probit`:UserWarning"),
    pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning"),
    # constant bootstrap samples (a gain of exactly 0) make scipy warn about degenerate data
    pytest.mark.filterwarnings("ignore::scipy.stats.DegenerateDataWarning"),
]

WORLD = dict(n_entities=80, n_name_parts=5, name_length=3, n_values=4, n_mentions=300,
             zipf_exponent=1.1, unknown_share=0.2, n_misinformation=3, misinformation_repeats=10,
             seed=0)
N_FRESH, N_SAMPLES, SEED = 200, 50, 0
TABLE_COLUMNS = ["entity", "n", "truth", "is_unknown", "misinformation",
                 "answer_MAP", "outcome_MAP", "confidence_MAP", "p_unknown_MAP",
                 "answer_LA", "outcome_LA", "confidence_LA", "p_unknown_LA", "mi_LA"]
BUCKETS = ["unseen", "1", "2-3", "4-30", "31-1000", ">1000"]


@pytest.fixture(scope="module")
def world() -> facts.FactWorld:
    w = facts.make_fact_world(**WORLD)
    n = w.entities["n"]
    # the world has every kind of entity the experiment asks about
    assert (n == 0).sum() >= 5 and (n == 1).sum() >= 5 and (n >= 5).sum() >= 5
    assert w.entities["is_unknown"].any()
    assert (w.entities["misinformation"] & (n > 0)).sum() >= 2
    return w


@pytest.fixture(scope="module")
def trained(world):
    """(model, posterior): a tiny CausalLM trained to the MAP and its default posterior."""
    settings.seed_everything(0)
    lm = models.CausalLM(world.vocab_size, world.seq_len - 1, d_model=16, n_heads=2, n_layers=1)
    training.train_map(lm, *world.next_token_counts(), steps=60, lr=3e-2, seed=0,
                       progress=False)
    posterior = posteriors.fit_posterior(models.NextToken(lm),
                                         posteriors.count_loader(*world.next_token_counts()))
    return lm, posterior


@pytest.fixture(scope="module")
def fresh_entities(world) -> np.ndarray:
    return world.sample_queries(N_FRESH, seed=SEED + 1000)


@pytest.fixture(scope="module")
def rep(world, trained, fresh_entities) -> FactReplicate:
    """A replicate assembled as ``run_facts`` assembles it, on the tiny world."""
    lm, posterior = trained
    fresh, fresh_probs = facts.answer_table(world, lm, posterior, fresh_entities,
                                                    N_SAMPLES, SEED)
    unseen, _ = facts.answer_table(world, lm, posterior, world.unseen(), N_SAMPLES, SEED)
    seen, seen_probs = facts.answer_table(world, lm, posterior, world.seen(), N_SAMPLES,
                                                  SEED)
    return FactReplicate(SEED, world, lm, fresh, fresh_probs, unseen, seen, seen_probs)


def _triple(value) -> tuple[float, float, float]:
    """An (estimate, low, high) statistic with low <= estimate <= high."""
    est, low, high = (float(v) for v in value)
    assert np.isfinite([est, low, high]).all()
    assert low <= est + 1e-12 and est <= high + 1e-12
    return est, low, high


# --- answer_table -------------------------------------------------------------------------


def test_answer_table_rows_and_entity_columns(world, rep, fresh_entities):
    for table, entities in [(rep.fresh, fresh_entities), (rep.unseen, world.unseen()),
                            (rep.seen, world.seen())]:
        assert list(table.columns) == TABLE_COLUMNS
        assert len(table) == len(entities)  # one row per query, repeats kept
        assert isinstance(table.index, pd.RangeIndex)
        np.testing.assert_array_equal(table["entity"], entities)
        ent = world.entities.iloc[entities]
        for col in ["n", "truth", "is_unknown", "misinformation"]:
            np.testing.assert_array_equal(table[col], ent[col])
    assert len(np.unique(fresh_entities)) < len(fresh_entities)  # popular entities repeat
    assert (rep.unseen["n"] == 0).all() and (rep.seen["n"] > 0).all()
    assert len(rep.unseen) + len(rep.seen) == world.n_entities


@pytest.mark.parametrize("name", hallucination.MODELS)
def test_answer_table_answers_are_the_argmax(world, rep, name):
    for table, probs in [(rep.fresh, rep.fresh_probs), (rep.seen, rep.seen_probs)]:
        p = probs[name]
        assert p.shape == (len(table), world.vocab_size) and p.dtype == np.float64
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
        assert (p >= 0).all()
        np.testing.assert_array_equal(table[f"answer_{name}"], p.argmax(axis=1))
        np.testing.assert_allclose(table[f"confidence_{name}"], p.max(axis=1))
        np.testing.assert_allclose(table[f"p_unknown_{name}"], p[:, world.unknown_token])
        assert ((table[f"confidence_{name}"] >= 1 / world.vocab_size - 1e-12)
                & (table[f"confidence_{name}"] <= 1 + 1e-12)).all()
        np.testing.assert_array_equal(
            table[f"outcome_{name}"],
            facts.answer_outcome(table[f"answer_{name}"].to_numpy(), world,
                                 table["entity"].to_numpy()))
        assert set(table[f"outcome_{name}"]) <= set(facts.OUTCOMES)


def test_answer_table_probabilities_are_the_models(world, trained, rep):
    lm, posterior = trained
    prompts = world.prompts(rep.seen["entity"].to_numpy())
    np.testing.assert_allclose(rep.seen_probs["MAP"],
                               models.next_token_probs(lm, prompts).double().numpy(), atol=1e-6)
    np.testing.assert_allclose(rep.seen_probs["LA"],
                               posterior.predictive(prompts).double().numpy(), atol=1e-6)
    # the MAP learned its corpus: on seen entities it mostly repeats the training answer
    counts = world.next_token_counts()[1].numpy()
    assert (rep.seen["answer_MAP"].to_numpy() == counts.argmax(axis=1)).mean() > 0.75
    # a trained model answers with answer tokens only (values or unknown)
    for table in (rep.fresh, rep.unseen, rep.seen):
        for name in hallucination.MODELS:
            assert np.isin(table[f"answer_{name}"], world.answer_tokens).all()


def test_answer_table_mutual_information(world, trained, rep):
    lm, posterior = trained
    mi = rep.seen["mi_LA"].to_numpy()
    assert np.isfinite(mi).all() and (mi >= 0).all() and mi.max() > 0
    samples = posterior.sample(world.prompts(world.seen()), N_SAMPLES, seed=SEED).double().numpy()
    samples /= samples.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(mi, metrics.mutual_information(samples), atol=1e-9)
    # the same query gets the same MI within a table (one set of posterior samples)
    by_entity = rep.fresh.groupby("entity")["mi_LA"].agg(["min", "max"])
    np.testing.assert_allclose(by_entity["min"], by_entity["max"], atol=1e-9)


def test_answer_table_is_seeded(world, trained, rep):
    lm, posterior = trained
    entities = world.seen()[:10]
    again, probs = facts.answer_table(world, lm, posterior, entities, N_SAMPLES, SEED)
    pd.testing.assert_frame_equal(again, rep.seen.iloc[:10])
    other, other_probs = facts.answer_table(world, lm, posterior, entities, N_SAMPLES,
                                                    SEED + 1)
    # another seed resamples the posterior: same answers, other mutual information
    pd.testing.assert_frame_equal(other.drop(columns="mi_LA"), again.drop(columns="mi_LA"))
    assert not np.allclose(other["mi_LA"], again["mi_LA"])
    for name in hallucination.MODELS:
        np.testing.assert_array_equal(other_probs[name], probs[name])


def test_answer_table_order_follows_the_entities(world, trained, rep):
    lm, posterior = trained
    entities = world.seen()[::-1][:7]
    table, probs = facts.answer_table(world, lm, posterior, entities, N_SAMPLES, SEED)
    np.testing.assert_array_equal(table["entity"], entities)
    rows = np.searchsorted(world.seen(), entities)
    for name in hallucination.MODELS:
        np.testing.assert_allclose(probs[name], rep.seen_probs[name][rows], atol=1e-6)
        np.testing.assert_array_equal(table[f"answer_{name}"],
                                      rep.seen[f"answer_{name}"].to_numpy()[rows])


@pytest.mark.parametrize("entities", [[], np.array([], dtype=int), [[0, 1], [2, 3]], 3])
def test_answer_table_rejects_bad_entities(world, trained, entities):
    lm, posterior = trained
    with pytest.raises(ValueError, match=r"entities must be a non-empty one-dimensional array"):
        facts.answer_table(world, lm, posterior, entities, N_SAMPLES, SEED)


# --- misinformation -----------------------------------------------------------------------


def test_misinformation_table(world, rep):
    mis = rep.misinformation
    e = world.entities
    expected = np.flatnonzero(e["misinformation"] & (e["n"] > 0))
    np.testing.assert_array_equal(mis["entity"], expected)
    wrong = e["wrong_value"].to_numpy()[expected]
    assert np.isin(wrong, world.value_tokens).all()
    rows = np.searchsorted(world.seen(), expected)
    for name in hallucination.MODELS:
        np.testing.assert_allclose(mis[f"p_wrong_{name}"],
                                   rep.seen_probs[name][rows, wrong])
    # misinformation drowns the truth: the MAP repeats the wrong value it read most often
    drowned = (e["count_wrong"] > 2 * e["count_truth"]).to_numpy()[expected]
    assert drowned.any()
    assert (mis["p_wrong_MAP"].to_numpy()[drowned] > 0.5).all()
    assert "p_wrong_MAP" not in rep.seen.columns  # a copy: the seen table is untouched


# --- C6 -----------------------------------------------------------------------------------


def test_c6_on_the_replicate(world, rep):
    stats = hallucination.c6_statistics(rep)
    assert set(stats) == {"unknown_rate_gain", "unknown_prob_gain"}
    u, unknown = rep.unseen, world.unknown_token
    rate, _, _ = _triple(stats["unknown_rate_gain"])
    prob, _, _ = _triple(stats["unknown_prob_gain"])
    assert rate == pytest.approx(((u["answer_LA"] == unknown).mean()
                                  - (u["answer_MAP"] == unknown).mean()))
    assert prob == pytest.approx((u["p_unknown_LA"] - u["p_unknown_MAP"]).mean())
    assert hallucination.c6_statistics(rep) == stats  # seeded


def test_c6_is_zero_when_la_is_map(rep):
    u = rep.unseen.assign(answer_LA=rep.unseen["answer_MAP"],
                          p_unknown_LA=rep.unseen["p_unknown_MAP"])
    stats = hallucination.c6_statistics(dataclasses.replace(rep, unseen=u))
    for key in ("unknown_rate_gain", "unknown_prob_gain"):
        assert tuple(map(float, stats[key])) == (0.0, 0.0, 0.0)


def test_c6_la_always_unknown(world, rep):
    unknown = world.unknown_token
    u = rep.unseen.assign(answer_MAP=world.value_tokens[0], answer_LA=unknown,
                          p_unknown_MAP=0.1, p_unknown_LA=0.6)
    stats = hallucination.c6_statistics(dataclasses.replace(rep, unseen=u))
    assert tuple(map(float, stats["unknown_rate_gain"])) == pytest.approx((1.0, 1.0, 1.0))
    assert tuple(map(float, stats["unknown_prob_gain"])) == pytest.approx((0.5, 0.5, 0.5))


# --- C7 -----------------------------------------------------------------------------------


def test_c7_on_the_replicate(world, rep):
    stats = hallucination.c7_statistics(rep)
    f, unknown, mono = rep.fresh, world.unknown_token, world.monofact_rate
    h_la = ((f["outcome_LA"] == "wrong") & (f["answer_LA"] != unknown)).mean()
    h_map = ((f["outcome_MAP"] == "wrong") & (f["answer_MAP"] != unknown)).mean()
    ratio, low, high = _triple(stats["hallucination_over_monofact"])
    assert ratio == pytest.approx(h_la / mono)
    # the hallucination rate of facts agrees (every answer here is an answer token)
    answers, entities = f["answer_LA"].to_numpy(), f["entity"].to_numpy()
    assert ratio * mono == pytest.approx(facts.hallucination_rate(answers, world, entities))
    gap, _, _ = _triple(stats["hallucination_gap"])
    assert gap == pytest.approx(abs(h_la - h_map)) and gap >= 0


def test_c7_hand_made(rep):
    n = 20
    unknown = rep.world.unknown_token
    value = int(rep.world.value_tokens[0])
    outcome_la = ["wrong"] * 6 + ["right"] * 10 + ["unknown"] * 4
    outcome_map = ["wrong"] * 10 + ["right"] * 10
    fresh = pd.DataFrame({
        "answer_LA": [value] * 16 + [unknown] * 4, "outcome_LA": outcome_la,
        "answer_MAP": [value] * n, "outcome_MAP": outcome_map})
    stats = hallucination.c7_statistics(dataclasses.replace(rep, fresh=fresh))
    mono = rep.world.monofact_rate
    ratio, low, high = _triple(stats["hallucination_over_monofact"])
    assert ratio == pytest.approx(0.3 / mono)
    assert 0 <= low < ratio < high <= 0.8 / mono
    gap, low, high = _triple(stats["hallucination_gap"])
    assert gap == pytest.approx(0.2)
    assert 0 <= low < 0.2 < high


# --- C8 -----------------------------------------------------------------------------------


def _confident_misinformation(rep: FactReplicate, p_wrong: float) -> FactReplicate:
    """LA gives each seen misinformation entity's wrong value ``p_wrong``, and those entities
    the lowest mutual information (0); the others get MI in [0.5, 1]."""
    seen = rep.seen.copy()
    mis = seen["misinformation"].to_numpy()
    wrong = rep.world.entities["wrong_value"].to_numpy()[seen["entity"].to_numpy()]
    V = rep.world.vocab_size
    la = rep.seen_probs["LA"].copy()
    rows = np.flatnonzero(mis)
    la[rows] = (1 - p_wrong) / (V - 1)
    la[rows, wrong[rows]] = p_wrong
    seen["mi_LA"] = np.where(mis, 0.0, np.linspace(0.5, 1.0, len(seen)))
    return dataclasses.replace(rep, seen=seen, seen_probs={**rep.seen_probs, "LA": la})


def test_c8_on_the_replicate(rep):
    stats = hallucination.c8_statistics(rep)
    mis = rep.misinformation
    assert stats["share_confident_wrong"] == pytest.approx((mis["p_wrong_LA"] >= 0.9).mean())
    assert stats["mi_minus_q25"] == pytest.approx(
        mis["mi_LA"].mean() - np.quantile(rep.seen["mi_LA"], 0.25))


def test_c8_confident_and_certain_misinformation(rep):
    stats = hallucination.c8_statistics(_confident_misinformation(rep, 0.95))
    assert stats["share_confident_wrong"] == 1.0
    assert stats["mi_minus_q25"] < 0
    n_mis = int(rep.seen["misinformation"].sum())
    others = np.linspace(0.5, 1.0, len(rep.seen))[~rep.seen["misinformation"].to_numpy()]
    # q25 over all seen entities: well above the misinformation entities' MI of 0
    q25 = np.quantile(np.append(others, np.zeros(n_mis)), 0.25)
    assert stats["mi_minus_q25"] == pytest.approx(-q25)


def test_c8_unsure_misinformation(rep):
    stats = hallucination.c8_statistics(_confident_misinformation(rep, 0.5))
    assert stats["share_confident_wrong"] == 0.0


def test_c8_needs_seen_misinformation(rep):
    keep = ~rep.seen["misinformation"].to_numpy()
    seen = rep.seen[keep].reset_index(drop=True)
    probs = {k: v[keep] for k, v in rep.seen_probs.items()}
    clean = dataclasses.replace(rep, seen=seen, seen_probs=probs)
    assert clean.misinformation.empty
    with pytest.raises(ValueError, match=r"no misinformation entity was seen"):
        hallucination.c8_statistics(clean)


# --- C9 -----------------------------------------------------------------------------------


def test_detection_labels(rep):
    for name in hallucination.MODELS:
        labels = facts.detection_labels(rep.fresh, name)
        assert labels.dtype.kind == "i" and set(labels) <= {0, 1}
        np.testing.assert_array_equal(labels, rep.fresh[f"outcome_{name}"] == "wrong")


def test_c9_on_the_replicate(rep):
    f = rep.fresh
    assert 0 < facts.detection_labels(f, "LA").sum() < len(f)
    stats = hallucination.c9_statistics(rep)
    diff, low, high = _triple(stats["auroc_difference"])
    assert stats["ci_low_auroc_difference"] == low
    expected = (metrics.auroc(f["mi_LA"], facts.detection_labels(f, "LA"))
                - metrics.auroc(1 - f["confidence_MAP"], facts.detection_labels(f, "MAP")))
    assert diff == pytest.approx(expected)
    assert -1 <= low and high <= 1


def _detection_table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    wrong = rng.permutation(np.arange(n) % 2).astype(bool)
    return pd.DataFrame({
        "outcome_LA": np.where(wrong, "wrong", "right"),
        "mi_LA": wrong + rng.uniform(0, 0.5, n),          # a perfect detector
        "outcome_MAP": np.where(rng.permutation(wrong), "wrong", "right"),
        "confidence_MAP": rng.uniform(0.3, 1.0, n),         # doubt unrelated to being wrong
    })


def test_c9_perfect_mi_beats_random_doubt(rep):
    fresh = _detection_table()
    diff, low, high = _triple(hallucination.c9_statistics(
        dataclasses.replace(rep, fresh=fresh))["auroc_difference"])
    assert metrics.auroc(fresh["mi_LA"], fresh["outcome_LA"] == "wrong") == 1.0
    assert 0.35 < diff < 0.65
    assert low > 0.2


def test_c9_identical_scores_give_zero(rep):
    fresh = _detection_table()
    fresh = fresh.assign(outcome_MAP=fresh["outcome_LA"], confidence_MAP=1 - fresh["mi_LA"])
    fresh["mi_LA"] = 1 - fresh["confidence_MAP"]  # exactly MAP's doubt, bit for bit
    stats = hallucination.c9_statistics(dataclasses.replace(rep, fresh=fresh))
    assert tuple(map(float, stats["auroc_difference"])) == (0.0, 0.0, 0.0)
    assert stats["ci_low_auroc_difference"] == 0.0


# --- buckets ------------------------------------------------------------------------------


def test_with_bucket_hand_made():
    n = [0, 1, 2, 3, 4, 30, 31, 1000, 1001, 0]
    table = pd.DataFrame({"n": n, "x": range(10)}, index=list("abcdefghij"))
    out = hallucination.with_bucket(table)
    assert list(out["bucket"].cat.categories) == BUCKETS and out["bucket"].cat.ordered
    assert out["bucket"].astype(str).tolist() == [
        "unseen", "1", "2-3", "2-3", "4-30", "4-30", "31-1000", "31-1000", ">1000", "unseen"]
    pd.testing.assert_frame_equal(out.drop(columns="bucket"), table)
    assert "bucket" not in table.columns  # the input is left alone


def test_with_bucket_on_the_replicate(rep):
    out = hallucination.with_bucket(rep.fresh)
    seen = rep.fresh["n"] > 0
    assert (out.loc[~seen, "bucket"] == "unseen").all()
    np.testing.assert_array_equal(out.loc[seen, "bucket"].astype(str),
                                  count_bucket(rep.fresh.loc[seen, "n"]).astype(str))
    assert out["bucket"].notna().all()
    assert set(out.loc[~seen, "bucket"]) == ({"unseen"} if (~seen).any() else set())


def test_with_bucket_all_unseen(rep):
    out = hallucination.with_bucket(rep.unseen)
    assert (out["bucket"] == "unseen").all()


def test_hallucination_by_bucket(world, rep):
    unknown = world.unknown_token
    long = hallucination.hallucination_by_bucket(rep.fresh, rep.world)
    n = len(rep.fresh)
    assert len(long) == 2 * n
    assert long["model"].tolist() == ["MAP"] * n + ["LA"] * n
    bucketed = hallucination.with_bucket(rep.fresh)
    for name in hallucination.MODELS:
        part = long[long["model"] == name].reset_index(drop=True)
        np.testing.assert_array_equal(part["entity"], rep.fresh["entity"])
        np.testing.assert_array_equal(part["bucket"].astype(str), bucketed["bucket"].astype(str))
        answers = part[f"answer_{name}"].to_numpy()
        concrete_wrong = np.isin(answers, world.value_tokens) & (answers != part["truth"])
        np.testing.assert_array_equal(part["hallucination"], concrete_wrong.astype(float))
        assert (part.loc[answers == unknown, "hallucination"] == 0).all()
        assert part["hallucination"].mean() == pytest.approx(facts.hallucination_rate(
            answers, world, part["entity"].to_numpy()))
    assert long["hallucination"].sum() > 0


def _hand_answers(world) -> pd.DataFrame:
    """Four queries about concrete and unknown entities, with known outcomes per answer."""
    e = world.entities
    concrete = int(np.flatnonzero(~e["is_unknown"] & (e["n"] > 0))[0])
    unknown_fact = int(np.flatnonzero(e["is_unknown"])[0])
    truth = int(e.loc[concrete, "truth"])
    other = int(next(v for v in world.value_tokens if v != truth))
    entities = np.array([concrete, concrete, concrete, unknown_fact, unknown_fact])
    answers = np.array([truth, other, world.unknown_token, other, world.unknown_token])
    table = e.iloc[entities][["entity", "n", "truth", "is_unknown", "misinformation"]]
    table = table.reset_index(drop=True)
    outcomes = facts.answer_outcome(answers, world, entities)
    assert outcomes.tolist() == ["right", "wrong", "unknown", "wrong", "right"]
    for name in hallucination.MODELS:
        table[f"answer_{name}"] = answers
        table[f"outcome_{name}"] = outcomes
    return table


def test_hallucination_by_bucket_hand_made(world):
    long = hallucination.hallucination_by_bucket(_hand_answers(world), world)
    # a false value is a hallucination, for a known or an unknown fact; "unknown" never is
    assert long["hallucination"].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0] * 2


def test_a_non_answer_token_is_no_hallucination(world):
    table = _hand_answers(world)
    for name in hallucination.MODELS:
        table.loc[1, f"answer_{name}"] = world.bos  # asserts no fact
        table[f"outcome_{name}"] = facts.answer_outcome(table[f"answer_{name}"].to_numpy(),
                                                        world, table["entity"].to_numpy())
    long = hallucination.hallucination_by_bucket(table, world)
    rate = facts.hallucination_rate(table["answer_LA"].to_numpy(), world,
                                    table["entity"].to_numpy())
    assert long["hallucination"].mean() == pytest.approx(rate)


# --- ROC table ----------------------------------------------------------------------------


def test_roc_table(rep):
    roc = hallucination.roc_table(rep.fresh)
    assert list(roc.columns) == ["score", "false positive rate", "true positive rate"]
    names = list(dict.fromkeys(roc["score"]))
    assert [s.split(" (AUROC")[0] for s in names] == [
        "MAP: 1 - max p", "LA: 1 - max p", "LA: mutual information"]
    f = rep.fresh
    expected = [metrics.auroc(1 - f["confidence_MAP"], facts.detection_labels(f, "MAP")),
                metrics.auroc(1 - f["confidence_LA"], facts.detection_labels(f, "LA")),
                metrics.auroc(f["mi_LA"], facts.detection_labels(f, "LA"))]
    for name, auc in zip(names, expected):
        assert name.endswith(f"(AUROC {auc:.3f})")
        curve = roc[roc["score"] == name]
        fpr = curve["false positive rate"].to_numpy(float)
        tpr = curve["true positive rate"].to_numpy(float)
        assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
        assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
        assert np.trapezoid(tpr, fpr) == pytest.approx(auc, abs=1e-6)


def test_roc_table_needs_right_and_wrong_answers(rep):
    right = rep.fresh.assign(outcome_MAP="right", outcome_LA="right")
    with pytest.raises(ValueError, match=r"AUROC needs both positive and negative labels"):
        hallucination.roc_table(right)


# --- policies -----------------------------------------------------------------------------

THRESHOLDS = [0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]


@pytest.fixture(scope="module")
def policies(rep) -> pd.DataFrame:
    return hallucination.policy_scores(rep, THRESHOLDS)


def test_policy_scores_layout(rep, policies):
    assert list(policies.columns) == ["seed", "model", "threshold", "score", "answered",
                                      "hallucination"]
    assert len(policies) == 2 * len(THRESHOLDS)
    assert (policies["seed"] == rep.seed).all()
    for name in hallucination.MODELS:
        assert policies.loc[policies["model"] == name, "threshold"].tolist() == THRESHOLDS
    assert ((policies["hallucination"] >= 0)
            & (policies["hallucination"] <= policies["answered"])
            & (policies["answered"] <= 1)).all()


def test_policy_scores_match_the_grading(rep, policies):
    entities = rep.fresh["entity"].to_numpy()
    for row in policies.itertuples():
        answers = facts.confident_answers(rep.fresh_probs[row.model], rep.world, row.threshold)
        outcomes = facts.answer_outcome(answers, rep.world, entities)
        assert row.score == pytest.approx(facts.graded_score(outcomes, 0.75))
        assert row.answered == pytest.approx((answers != rep.world.unknown_token).mean())
        assert row.hallucination == pytest.approx(
            facts.hallucination_rate(answers, rep.world, entities))


def test_policy_threshold_zero_answers_everything(rep, policies):
    world = rep.world
    for name in hallucination.MODELS:
        row = policies[(policies["model"] == name) & (policies["threshold"] == 0)].iloc[0]
        # the argmax of the answer tokens, always: "unknown" only where it is the best answer
        best = world.answer_tokens[rep.fresh_probs[name][:, world.answer_tokens].argmax(axis=1)]
        assert row["answered"] == pytest.approx((best != world.unknown_token).mean())
        outcomes = facts.answer_outcome(best, world, rep.fresh["entity"].to_numpy())
        assert row["score"] == pytest.approx(facts.graded_score(outcomes, 0.75))
        # the plain argmax policy of answer_table, since every argmax is an answer token
        assert row["answered"] == pytest.approx(
            (rep.fresh[f"answer_{name}"] != world.unknown_token).mean())
        assert row["answered"] > 0.5


def test_policy_answers_less_as_the_threshold_rises(rep, policies):
    is_unknown = rep.fresh["is_unknown"].mean()
    for name in hallucination.MODELS:
        part = policies[policies["model"] == name]
        assert (np.diff(part["answered"]) <= 1e-12).all()
        assert (np.diff(part["hallucination"]) <= 1e-12).all()
        last = part.iloc[-1]  # threshold 1: nothing exceeds it, every answer is "unknown"
        assert last["answered"] == 0 and last["hallucination"] == 0
        assert last["score"] == pytest.approx(is_unknown)  # right exactly on unknown facts


def test_policy_scores_reject_bad_thresholds(rep):
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\]"):
        hallucination.policy_scores(rep, [0.5, 1.5])


def test_hallucination_rates_add_an_all_queries_bucket(rep):
    rates = hallucination.hallucination_rates([rep, rep])
    per_bucket = hallucination.hallucination_by_bucket(rep.fresh, rep.world)
    assert len(rates) == 4 * len(per_bucket)
    assert list(rates["bucket"].cat.categories)[-1] == "all queries"
    overall = rates[rates["bucket"] == "all queries"]["hallucination"].mean()
    assert overall == pytest.approx(per_bucket["hallucination"].mean())


def test_unknown_on_unseen(rep):
    long = hallucination.unknown_on_unseen([rep])
    assert set(long["measure"]) == {"P(unknown)", "answers unknown"}
    assert len(long) == 2 * 2 * len(rep.unseen)
    p = long[(long["model"] == "LA") & (long["measure"] == "P(unknown)")]["value"]
    np.testing.assert_allclose(p.to_numpy(), rep.unseen["p_unknown_LA"].to_numpy())


def test_a_replicate_travels_between_processes(rep):
    """The seed-parallel runner pickles a replicate back from its worker."""
    import pickle
    back = pickle.loads(pickle.dumps(rep))
    pd.testing.assert_frame_equal(back.fresh, rep.fresh)
    assert back.excess_loss == pytest.approx(rep.excess_loss)



# === round 2 (C21-C24) ========================================================================
#
# The statistics are pure functions of per-query arrays; they are checked on hand-made inputs
# whose answers are known.  The whole pipeline (train, fit the answer posterior, answer, split,
# statistics) runs once on the tiny world, with a tiny recipe.

ROUND2_RECIPE = training.Recipe(
    corpus={k: v for k, v in WORLD.items() if k != "seed"},
    model=dict(d_model=16, n_heads=2, n_layers=1),
    training=dict(steps=60, lr=3e-2, weight_decay=1e-5))
N_QUERIES_TINY = 400


@pytest.fixture(scope="module")
def answers() -> hallucination.AnswerReplicate:
    return hallucination.run_answers(ROUND2_RECIPE, SEED, n_queries=N_QUERIES_TINY,
                                     n_samples=N_SAMPLES)


def test_round2_statistics_are_the_registered_ones(answers):
    """Every statistic of C21-C24's rules is computed, by the name data/claims.yaml gives it."""
    from bayes_at_scale.book import claims as claims_module
    registered = claims_module.load_claims()
    for cid in ("C21", "C22", "C23", "C24"):
        stats = answers.statistics[cid]
        for condition in registered[cid].conditions:
            assert condition.statistic in stats, (cid, condition.statistic)
            value = stats[condition.statistic]
            if isinstance(value, tuple):
                _triple(value)
            else:
                assert np.isfinite(value)
    assert answers.statistics["C21"]["queries"] == N_QUERIES_TINY
    assert answers.statistics["C22"]["misinformation_entities"] == WORLD["n_misinformation"]


def test_run_answers_layout(answers):
    w = answers.world
    e = answers.entities
    assert len(e) == w.n_entities and (e["entity"].to_numpy() == np.arange(w.n_entities)).all()
    assert answers.queries.shape == (N_QUERIES_TINY,)
    assert answers.selection.sum() == N_QUERIES_TINY // 2
    fresh = answers.fresh
    assert len(fresh) == N_QUERIES_TINY
    assert (fresh["entity"].to_numpy() == answers.queries).all()
    assert set(fresh["half"]) == {"selection", "evaluation"}
    assert ((fresh["half"] == "selection").to_numpy() == answers.selection).all()
    # answers are answer tokens; MI is non-negative; confidences are probabilities
    for name in ("MAP", "LA"):
        assert np.isin(e[f"answer_{name}"], w.answer_tokens).all()
        assert e[f"confidence_{name}"].between(1 / len(w.answer_tokens) - 1e-9, 1).all()
    assert (e["mi_LA"] >= 0).all()
    assert answers.gradient_norm >= 0 and np.isfinite(answers.gradient_norm)
    assert len(answers.prior_precision) >= 1 and all(p > 0 for p in answers.prior_precision)


def test_run_answers_memorises_the_seen_facts(answers):
    """The mode mostly answers what the corpus says most often about a seen entity (a tiny
    network after 60 steps, its head retrained at the marginal-likelihood prior)."""
    e = answers.entities
    counts = answers.world.next_token_counts()[1].numpy()
    seen = answers.world.seen()
    majority = counts.argmax(axis=1)
    clear = np.sort(counts, axis=1)[:, -1] > np.sort(counts, axis=1)[:, -2]
    agree = e["answer_MAP"].to_numpy()[seen][clear] == majority[clear]
    assert agree.mean() >= 0.8


def test_run_answers_is_seeded(answers):
    again = hallucination.run_answers(ROUND2_RECIPE, SEED, n_queries=N_QUERIES_TINY,
                                      n_samples=N_SAMPLES, statistics=False)
    pd.testing.assert_frame_equal(again.entities, answers.entities)
    np.testing.assert_array_equal(again.queries, answers.queries)
    np.testing.assert_array_equal(again.selection, answers.selection)
    assert again.statistics == {}
    assert hallucination.verdict_statistics([again], "C22") == [answers.statistics["C22"]]


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n_queries=1), r"n_queries must be an integer >= 2"),
    (dict(n_samples=0), r"n_samples must be a positive integer"),
])
def test_run_answers_checks_its_arguments_first(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        hallucination.run_answers(ROUND2_RECIPE, SEED, **kwargs)


def test_answer_replicate_travels_between_processes(answers):
    import pickle
    back = pickle.loads(pickle.dumps(answers))
    pd.testing.assert_frame_equal(back.fresh, answers.fresh)
    assert back.statistics.keys() == answers.statistics.keys()


def test_round2_tables(answers):
    fits = hallucination.fit_summary([answers])
    assert fits.index.tolist() == [SEED]
    assert fits.loc[SEED, "misinformation"] == WORLD["n_misinformation"]
    assert fits.loc[SEED, "monofact (true facts)"] == answers.world.true_fact_monofact_rate
    assert fits.loc[SEED, "excess loss"] == answers.excess_loss > -1e-6
    assert fits.loc[SEED, "gradient norm"] == answers.gradient_norm
    table = hallucination.statistics_table([answers], "C21")
    assert table.loc[SEED, "hallucination_to_monofact"] == pytest.approx(
        table.loc[SEED, "rate_LA"] / table.loc[SEED, "monofact_true_facts"])
    curves = hallucination.policy_curves([answers])
    assert set(curves["policy"]) == {"LA (Score_LA)", "MAP (1 - max p)"}
    assert len(curves) == 2 * len(hallucination.COVERAGES)
    chosen = hallucination.chosen_policies([answers])
    assert len(chosen) == 2 and chosen["share answered"].between(0, 1).all()
    # the chosen policy's grade is on (or under) its curve's best point, up to the grid
    c24 = answers.statistics["C24"]
    for name, model in (("LA (Score_LA)", "LA"), ("MAP (1 - max p)", "MAP")):
        curve = curves[curves["policy"] == name]
        assert c24[f"grade_{model}"] <= curve["mean grade"].max() + 0.05


# --- answer_entities and answer_probabilities ------------------------------------------------


def _one_hot_probs(world, columns) -> np.ndarray:
    p = np.full((world.n_entities, len(world.answer_tokens)), 0.01)
    p[np.arange(world.n_entities), columns] = 1.0
    return p / p.sum(axis=1, keepdims=True)


def test_answer_entities_by_hand(world):
    a = len(world.answer_tokens)
    truth_column = world.truth - world.answer_tokens[0]
    probs = {"MAP": _one_hot_probs(world, truth_column),
             "LA": _one_hot_probs(world, np.full(world.n_entities, a - 1))}
    mi = np.linspace(0, 1, world.n_entities)
    e = hallucination.answer_entities(world, probs, mi)
    assert (e["answer_MAP"] == world.truth).all() and (e["outcome_MAP"] == "right").all()
    assert (e["answer_LA"] == world.unknown_token).all()
    assert set(e["outcome_LA"]) <= {"right", "unknown"}
    assert (e.loc[e["is_unknown"], "outcome_LA"] == "right").all()
    np.testing.assert_allclose(e["confidence_MAP"], probs["MAP"].max(axis=1))
    np.testing.assert_allclose(e["p_unknown_LA"], probs["LA"][:, -1])
    np.testing.assert_allclose(e["mi_LA"], mi)
    mis = e["misinformation"].to_numpy()
    assert e.loc[~mis, "p_wrong_LA"].isna().all()
    wrong = world.entities.loc[mis, "wrong_value"].to_numpy() - world.answer_tokens[0]
    np.testing.assert_allclose(e.loc[mis, "p_wrong_MAP"], probs["MAP"][mis, wrong])


def test_answer_entities_bad_input(world):
    a = len(world.answer_tokens)
    good = _one_hot_probs(world, np.zeros(world.n_entities, dtype=int))
    mi = np.zeros(world.n_entities)
    with pytest.raises(ValueError, match=r"probs must map exactly \('MAP', 'LA'\)"):
        hallucination.answer_entities(world, {"MAP": good}, mi)
    with pytest.raises(ValueError, match=r"probs\['LA'\] must have shape"):
        hallucination.answer_entities(world, {"MAP": good, "LA": good[:, :a - 1] /
                                              good[:, :a - 1].sum(1, keepdims=True)}, mi)
    with pytest.raises(ValueError, match=r"rows must sum to 1"):
        hallucination.answer_entities(world, {"MAP": good, "LA": 2 * good}, mi)
    with pytest.raises(ValueError, match=r"mi must have shape"):
        hallucination.answer_entities(world, {"MAP": good, "LA": good}, mi[:-1])
    with pytest.raises(TypeError, match=r"world must be a FactWorld"):
        hallucination.answer_entities("world", {"MAP": good, "LA": good}, mi)


class _FakePosterior:
    """Samples whose mean and spread are known: each prompt's samples alternate between two
    distributions; the seed shifts nothing but is recorded."""

    def __init__(self, a: int):
        self.a, self.seeds = a, []

    def map_probs(self, prompts):
        return np.full((len(prompts), self.a), 1 / self.a)

    def samples(self, prompts, n_samples, seed):
        self.seeds.append(seed)
        p, q = np.eye(self.a)[0] * 0.5 + 0.5 / self.a, np.eye(self.a)[1] * 0.5 + 0.5 / self.a
        s = np.stack([p if i % 2 == 0 else q for i in range(n_samples)])
        return np.repeat(s[:, None, :], len(prompts), axis=1)


def test_answer_probabilities_with_a_fake_posterior(world):
    fake = _FakePosterior(len(world.answer_tokens))
    probs, mi = answer_posteriors.answer_probabilities(fake, world.prompts(), n_samples=4, seed=3,
                                                   chunk=30)
    n = world.n_entities
    assert probs["LA"].shape == probs["MAP"].shape == (n, len(world.answer_tokens))
    s = fake.samples(world.prompts()[:1], 4, seed=0)
    np.testing.assert_allclose(probs["LA"], np.repeat(s.mean(axis=0), n, axis=0))
    np.testing.assert_allclose(mi, metrics.mutual_information(s)[0])
    # one seed per chunk of 30 prompts, all different
    chunk_seeds = fake.seeds[:-1]
    assert len(chunk_seeds) == -(-n // 30) and len(set(chunk_seeds)) == len(chunk_seeds)


# --- C21 ----------------------------------------------------------------------------------------


def test_hallucination_statistics_by_hand():
    h_la = np.array([1, 0, 0, 0] * 5, dtype=float)
    h_map = np.array([1, 1, 0, 0] * 5, dtype=float)
    stats = hallucination.hallucination_statistics(h_la, h_map, 0.5, seed=0, n_resamples=200)
    ratio = _triple(stats["hallucination_to_monofact"])
    assert ratio[0] == pytest.approx(0.25 / 0.5)
    gap = _triple(stats["abs_rate_difference"])
    assert gap[0] == pytest.approx(0.25)
    same = hallucination.hallucination_statistics(h_la, h_la, 0.25, seed=0, n_resamples=200)
    assert same["hallucination_to_monofact"][0] == pytest.approx(1.0)
    assert same["abs_rate_difference"] == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("h_la, h_map, monofact, pattern", [
    ([1.0, 0.0], [1.0], 0.2, r"same shape"),
    ([1.0, 0.5], [1.0, 0.0], 0.2, r"indicators must be 0 or 1"),
    ([1.0, 0.0], [1.0, 0.0], 0.0, r"monofact must be a finite number in \(0, 1\]"),
    ([1.0, 0.0], [1.0, 0.0], float("nan"), r"monofact must be a finite number"),
    ([], [], 0.2, r"h_la is empty"),
])
def test_hallucination_statistics_bad_input(h_la, h_map, monofact, pattern):
    with pytest.raises(ValueError, match=pattern):
        hallucination.hallucination_statistics(h_la, h_map, monofact, seed=0)


def test_c21_counts_monofacts_on_true_facts_only(answers):
    """C21 divides by the true-fact monofact rate, not by round 1's rate over all mentions."""
    c21 = answers.statistics["C21"]
    w = answers.world
    assert c21["monofact_true_facts"] == w.true_fact_monofact_rate != w.monofact_rate
    assert c21["hallucination_to_monofact"][0] == pytest.approx(
        c21["rate_LA"] / w.true_fact_monofact_rate)
    fresh = answers.fresh
    assert c21["rate_MAP"] == pytest.approx(
        facts.hallucination_rate(fresh["answer_MAP"].to_numpy(), w, fresh["entity"].to_numpy()))


# --- C22 ----------------------------------------------------------------------------------------


def test_confident_wrong_statistics_by_hand():
    stats = hallucination.confident_wrong_statistics(
        [0.95, 0.5, 0.9, 0.99], [0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 2.0, 3.0, 4.0])
    assert stats["misinformation_entities"] == 4
    assert stats["share_confident_wrong"] == pytest.approx(3 / 4)   # 0.9 itself counts
    assert stats["mi_minus_seen_q25"] == pytest.approx(0.25 - 1.0)


@pytest.mark.parametrize("args, pattern", [
    (([0.9, 0.8], [0.1], [0.1, 0.2]), r"same shape"),
    (([1.2], [0.1], [0.1]), r"probabilities in \[0, 1\]"),
    (([], [], [0.1]), r"p_wrong is empty"),
    (([0.9], [0.1], []), r"mi_seen is empty"),
    (([0.9], [np.nan], [0.1]), r"mi_misinformation contains NaN"),
])
def test_confident_wrong_statistics_bad_input(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        hallucination.confident_wrong_statistics(*args)


def test_c22_on_the_replicate(answers):
    c22 = answers.statistics["C22"]
    e = answers.entities
    mis = e[e["misinformation"]]
    assert c22["share_confident_wrong"] == pytest.approx((mis["p_wrong_LA"] >= 0.9).mean())
    assert c22["mi_minus_seen_q25"] == pytest.approx(
        mis["mi_LA"].mean() - np.quantile(e.loc[e["n"] > 0, "mi_LA"], 0.25))
    assert 0 <= c22["share_confident_corpus"] <= 1


# --- C23 ----------------------------------------------------------------------------------------


def _halves(n: int = 40) -> np.ndarray:
    return np.arange(n) < n // 2


def test_choose_score_never_reads_the_evaluation_half():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    selection = _halves()
    a, b = rng.random(40), rng.random(40)
    chosen = metrics.choose_score({"a": a, "b": b}, labels, selection)
    for poison in (np.nan, np.inf, -1e9):
        a2, b2 = a.copy(), b.copy()
        a2[~selection], b2[~selection] = poison, -poison if poison == poison else poison
        labels2 = labels.copy()
        labels2[~selection] = 7          # not even a label
        assert metrics.choose_score({"a": a2, "b": b2}, labels2, selection) == chosen


@pytest.mark.parametrize("candidates, labels, selection, pattern", [
    ({}, [0, 1], [True, False], r"no candidate scores"),
    ({"a": [0.1, 0.2]}, [0, 1], [1, 0], r"boolean mask"),
    ({"a": [0.1, 0.2]}, [0, 1, 1], [True, False], r"labels and selection"),
    ({"a": [0.1]}, [0, 1], [True, True], r"score 'a' must have shape"),
    ({"a": [0.1, 0.2, 0.3]}, [1, 1, 0], [True, True, False], r"both positive and negative"),
])
def test_choose_score_bad_input(candidates, labels, selection, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.choose_score(candidates, np.asarray(labels), np.asarray(selection))


def test_auroc_gain_statistics_by_hand():
    wrong = np.array([0, 0, 0, 1] * 10)
    perfect = wrong + 0.0
    blind = np.zeros(40)                       # every query tied: AUROC 0.5
    stats = hallucination.auroc_gain_statistics(perfect, wrong, blind, wrong, seed=0,
                                                n_resamples=100)
    assert stats["auroc_la"] == 1.0 and stats["auroc_map"] == 0.5
    assert _triple(stats["auroc_gain_minus_quarter_gap"])[0] == pytest.approx(
        1.0 - 0.5 - 0.25 * 0.5)
    assert stats["ci_low_auroc_difference"] == pytest.approx(0.5)
    same = hallucination.auroc_gain_statistics(perfect, wrong, perfect, wrong, seed=0,
                                               n_resamples=100)
    assert same["auroc_gain_minus_quarter_gap"] == (0.0, 0.0, 0.0)
    assert same["ci_low_auroc_difference"] == 0.0


def test_auroc_gain_statistics_share_their_resamples():
    """The gain's interval and the difference's come from the same resamples: the gain is
    the difference minus a quarter of MAP's gap, resample by resample, so with a perfect MAP
    score the two intervals coincide."""
    rng = np.random.default_rng(1)
    wrong = rng.integers(0, 2, 200)
    stats = hallucination.auroc_gain_statistics(rng.random(200), wrong, wrong + 0.0, wrong,
                                                seed=2, n_resamples=100)
    assert stats["auroc_gain_minus_quarter_gap"][1] == pytest.approx(
        stats["ci_low_auroc_difference"])


def test_auroc_gain_statistics_bad_input():
    with pytest.raises(ValueError, match=r"same shape"):
        hallucination.auroc_gain_statistics([0.1, 0.2], [0, 1], [0.1], [1], seed=0)
    with pytest.raises(ValueError, match=r"score_la contains NaN"):
        hallucination.auroc_gain_statistics([np.nan, 0.2], [0, 1], [0.1, 0.2], [0, 1], seed=0)


def test_c23_chooses_on_the_selection_half(answers):
    c23 = answers.statistics["C23"]
    choice = hallucination.LA_SCORES[int(c23["score_la"])]
    assert choice == hallucination.la_score_choice(answers)
    seen = [c23["auroc_selection_0"], c23["auroc_selection_1"]]
    assert seen[int(c23["score_la"])] == max(seen)
    # the evaluation-half AUROCs are those of the chosen score and of MAP's
    fresh, held = answers.fresh, ~answers.selection
    s = hallucination.scores(fresh)
    assert c23["auroc_la"] == pytest.approx(metrics.auroc(
        s["LA"][choice][held], hallucination.detection_labels(fresh, "LA")[held]))
    assert c23["auroc_map"] == pytest.approx(metrics.auroc(
        s["MAP"]["1 - max p"][held], hallucination.detection_labels(fresh, "MAP")[held]))


# --- C24 ----------------------------------------------------------------------------------------


def test_policy_grades_by_hand(world):
    e = world.entities
    unknown = int(np.flatnonzero(e["is_unknown"])[0])
    known = int(np.flatnonzero(~e["is_unknown"])[0])
    table = pd.DataFrame({"entity": [unknown, known, known],
                          "outcome_LA": ["wrong", "right", "wrong"]})
    answer, abstain = hallucination.policy_grades(table, "LA", world)
    np.testing.assert_allclose(answer, [-3, 1, -3])
    np.testing.assert_allclose(abstain, [1, 0, 0])   # "unknown" is right about an unknown fact


SCORE = np.array([0.1, 0.2, 0.3, 0.4])
ANSWER = np.array([1.0, 1.0, -3.0, -3.0])
ABSTAIN = np.zeros(4)


def test_best_threshold_by_hand():
    assert hallucination.best_threshold(SCORE, ANSWER, ABSTAIN) == pytest.approx(0.2)
    assert hallucination.best_threshold(SCORE, np.ones(4), ABSTAIN) == pytest.approx(0.4)
    assert hallucination.best_threshold(SCORE, -np.ones(4), ABSTAIN) == -np.inf
    # tied scores are answered together: the pair at 0.2 holds a right and two wrongs
    tied = np.array([0.1, 0.2, 0.2, 0.2])
    assert hallucination.best_threshold(tied, np.array([1.0, 1.0, -3.0, -3.0]),
                                        ABSTAIN) == pytest.approx(0.1)
    # equal grades: the threshold that answers more wins
    assert hallucination.best_threshold(SCORE, np.array([1.0, 0.0, -3.0, -3.0]),
                                        ABSTAIN) == pytest.approx(0.2)


def test_abstain_above_by_hand():
    np.testing.assert_allclose(hallucination.abstain_above(SCORE, ANSWER, ABSTAIN + 0.5, 0.25),
                               [1, 1, 0.5, 0.5])
    np.testing.assert_allclose(hallucination.abstain_above(SCORE, ANSWER, ABSTAIN, np.inf),
                               ANSWER)
    with pytest.raises(ValueError, match=r"threshold must be a number"):
        hallucination.abstain_above(SCORE, ANSWER, ABSTAIN, float("nan"))


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_is_the_best_candidate(seed):
    rng = np.random.default_rng(seed)
    score = rng.integers(0, 8, 60) / 8          # many ties
    answer = rng.choice([1.0, -3.0], 60)
    abstain = rng.choice([0.0, 1.0], 60, p=[0.9, 0.1])
    best = hallucination.best_threshold(score, answer, abstain)
    mean = hallucination.abstain_above(score, answer, abstain, best).mean()
    for t in [-np.inf, *np.unique(score)]:
        assert hallucination.abstain_above(score, answer, abstain, t).mean() <= mean + 1e-12


def test_coverage_grades_by_hand():
    grades = hallucination.coverage_grades(SCORE, ANSWER, ABSTAIN, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(grades, [0.0, 0.5, -1.0])


@pytest.mark.parametrize("args, pattern", [
    ((SCORE, ANSWER[:3], ABSTAIN), r"must have the same shape"),
    ((SCORE, ANSWER, ABSTAIN, [1.5]), r"coverages must lie in \[0, 1\]"),
    (([], [], []), r"score is empty"),
])
def test_coverage_grades_bad_input(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        hallucination.coverage_grades(*args)


def test_abstention_statistics_by_hand():
    """LA's score ranks the wrong answers last, MAP's ranks them first: LA's policy answers the
    right ones and abstains on the wrong ones; MAP's best is to abstain on everything."""
    answer = np.tile([1.0, 1.0, -3.0, -3.0], 10)
    abstain = np.zeros(40)
    la_score = np.tile([0.1, 0.2, 0.8, 0.9], 10)
    map_score = 1 - la_score
    stats = hallucination.abstention_statistics((la_score, answer, abstain),
                                                (map_score, answer, abstain), _halves(),
                                                seed=0, n_resamples=100)
    assert stats["grade_LA"] == pytest.approx(0.5) and stats["answered_LA"] == 0.5
    assert stats["grade_MAP"] == 0.0 and stats["answered_MAP"] == 0.0
    assert _triple(stats["grade_difference"])[0] == pytest.approx(0.5)
    assert stats["ci_low_grade_difference"] == stats["grade_difference"][1]


def test_abstention_thresholds_never_read_the_evaluation_half():
    rng = np.random.default_rng(3)
    score, answer = rng.random(40), rng.choice([1.0, -3.0], 40)
    abstain, selection = np.zeros(40), _halves()
    stats = hallucination.abstention_statistics((score, answer, abstain),
                                                (score, answer, abstain), selection, seed=0,
                                                n_resamples=50)
    flipped = answer.copy()
    flipped[~selection] *= -1                  # the evaluation half's grades change...
    again = hallucination.abstention_statistics((score, flipped, abstain),
                                                (score, flipped, abstain), selection, seed=0,
                                                n_resamples=50)
    # ...its thresholds do not
    assert again["threshold_LA"] == stats["threshold_LA"]
    assert again["threshold_MAP"] == stats["threshold_MAP"]


@pytest.mark.parametrize("selection, pattern", [
    (np.ones(40, dtype=bool), r"both halves must hold queries"),
    (np.arange(40) % 2, r"boolean mask"),
    (_halves(20), r"inputs must have shape \(20,\)"),
])
def test_abstention_statistics_bad_input(selection, pattern):
    inputs = (SCORE.repeat(10), ANSWER.repeat(10), ABSTAIN.repeat(10))
    with pytest.raises(ValueError, match=pattern):
        hallucination.abstention_statistics(inputs, inputs, selection, seed=0)


def test_c24_on_the_replicate(answers):
    c24 = answers.statistics["C24"]
    diff = _triple(c24["grade_difference"])
    assert diff[0] == pytest.approx(c24["grade_LA"] - c24["grade_MAP"])
    assert c24["ci_low_grade_difference"] == diff[1]
    assert 0 <= c24["answered_LA"] <= 1 and 0 <= c24["answered_MAP"] <= 1
