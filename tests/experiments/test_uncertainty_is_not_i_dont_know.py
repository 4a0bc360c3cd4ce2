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
from bayes_at_scale.core import metrics
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

