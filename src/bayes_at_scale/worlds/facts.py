"""A world of arbitrary facts with known truth, and the metrics of hallucination
(chapter 4).

Each *entity* has a name made of ``name_length`` shared *name parts* (so an entity never
seen in training looks like the ones that were) and one *fact*: a value out of
``n_values``, drawn uniformly at random with no link between name and value - nothing
about an unseen entity's value can be inferred from the rest of the corpus.  A share of
the entities have a fact that is truly unknown; the corpus writes the special answer
``unknown`` for them, and ``unknown`` is the right answer about them.  The question
about entity ``e`` is the token sequence ``[BOS, part_1, ..., part_L]`` and its answer
is one token: a value or ``unknown``.

Entities are mentioned in training with Zipf popularity (rank-frequency ``q_r ∝ r^-s``
over a random ranking), so a few are mentioned hundreds of times, many once, many never.
Every mention writes the entity's true answer, except for a few *misinformation*
entities that are, on top of their normal mentions, mentioned ``misinformation_repeats``
times with one fixed wrong value.

The *monofact rate* (Kalai & Vempala 2024) is the share of training mentions whose
entity is mentioned exactly once; by Good-Turing it estimates the *missing mass*, the
popularity of the entities never seen, and it lower-bounds the hallucination rate of any
calibrated model.

With ``shared_names=True`` (round 2, claim C28) names are drawn with replacement from a
small name space, so that many entities share each name and the question about a name is
ambiguous: its right answer depends on which entity it means, and the most a reader of
the corpus can know is how often each answer is right.  With many mentions per name, a
model trained to the corpus's frequencies is then calibrated on fresh questions from the
mention distribution, which the distinct-name worlds' memorising models are not.

The metrics grade answers the way Kalai et al. (2025) propose: +1 for a right answer, 0
for "unknown", ``-t / (1 - t)`` for a wrong one, so that answering pays only when the
chance of being right exceeds ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core.checks import check_int, check_positive, check_threshold
from ..core import metrics
from .fragments import zipf_probabilities
from ..core.models import CausalLM, next_token_probs
from ..core.posteriors import Posterior
from ..core.training import Recipe, train_language_model

OUTCOMES = ("right", "unknown", "wrong")

ENTITY_COLUMNS = (
    "entity",
    "truth",
    "is_unknown",
    "popularity",
    "n",
    "count_truth",
    "count_wrong",
    "misinformation",
    "wrong_value",
)


def _part_columns(name_length: int) -> list[str]:
    return [f"part_{j}" for j in range(name_length)]


@dataclass(frozen=True)
class FactWorld:
    """A sampled world of entities with one fact each, and the training corpus about
    them.

    Attributes:

    * ``entities`` - one row per entity (index = ``entity`` = 0..n_entities-1): its name
      parts ``part_0 .. part_{L-1}`` (part ids in ``0..n_name_parts-1``), ``truth``
      (token id of the true answer: a value token, or the unknown token),
      ``is_unknown``, ``popularity`` (its probability in the mention distribution),
      ``n`` (training mentions, misinformation included), ``count_truth`` (mentions that
      write the true answer), ``count_wrong`` (misinformation mentions),
      ``misinformation`` and ``wrong_value`` (token id of the wrong value, -1 for
      entities without misinformation);
    * ``n_name_parts``, ``name_length``, ``n_values`` - sizes of the vocabulary.

    Token layout: 0 is BOS, then the name parts, then the values, then one UNKNOWN
    token.
    """

    entities: pd.DataFrame
    n_name_parts: int
    name_length: int
    n_values: int

    def __post_init__(self):
        check_int("n_name_parts", self.n_name_parts)
        check_int("name_length", self.name_length)
        check_int("n_values", self.n_values, minimum=2)
        if not isinstance(self.entities, pd.DataFrame):
            raise TypeError(
                f"entities must be a DataFrame, got {type(self.entities).__name__}"
            )
        missing = [
            c
            for c in (*ENTITY_COLUMNS, *_part_columns(self.name_length))
            if c not in self.entities.columns
        ]
        if missing:
            raise ValueError(f"entities lacks the columns {missing}")
        if len(self.entities) == 0:
            raise ValueError("entities is empty")

    # --- vocabulary -------------------------------------------------------------------
    @property
    def bos(self) -> int:
        return 0

    def part_token(self, part):
        """Token id of name part(s) ``part`` (ids ``0..n_name_parts-1``)."""
        return 1 + np.asarray(part)

    def value_token(self, value):
        """Token id of value(s) ``value`` (ids ``0..n_values-1``)."""
        return 1 + self.n_name_parts + np.asarray(value)

    @property
    def value_tokens(self) -> np.ndarray:
        return self.value_token(np.arange(self.n_values))

    @property
    def unknown_token(self) -> int:
        return 1 + self.n_name_parts + self.n_values

    @property
    def answer_tokens(self) -> np.ndarray:
        """The tokens that answer a question: the values, then the unknown token."""
        return np.append(self.value_tokens, self.unknown_token)

    @property
    def vocab_size(self) -> int:
        return 2 + self.n_name_parts + self.n_values

    @property
    def seq_len(self) -> int:
        return 1 + self.name_length + 1  # BOS, name parts, answer

    # --- the truth and the corpus -----------------------------------------------------
    @property
    def n_entities(self) -> int:
        return len(self.entities)

    @property
    def truth(self) -> np.ndarray:
        """Token id of each entity's true answer."""
        return self.entities["truth"].to_numpy()

    @property
    def n_mentions(self) -> int:
        """Training mentions in all, misinformation included."""
        return int(self.entities["n"].sum())

    @property
    def names(self) -> np.ndarray:
        """Name-part ids ``(n_entities, name_length)``."""
        return self.entities[_part_columns(self.name_length)].to_numpy()

    @property
    def n_names(self) -> int:
        """The number of distinct names: ``n_entities`` unless names are shared."""
        return len(np.unique(self.names, axis=0))

    def seen(self) -> np.ndarray:
        """Indices of the entities mentioned at least once in training."""
        return np.flatnonzero(self.entities["n"].to_numpy() > 0)

    def unseen(self) -> np.ndarray:
        """Indices of the entities never mentioned in training."""
        return np.flatnonzero(self.entities["n"].to_numpy() == 0)

    @property
    def monofact_rate(self) -> float:
        """Good-Turing / Kalai-Vempala monofact rate of the training corpus.

        The number of entities mentioned exactly once in training (their one fact is a
        "monofact") divided by the number of training mentions; misinformation mentions
        count in both.  It estimates the missing mass (:attr:`missing_mass`).
        """
        n = self.entities["n"].to_numpy()
        return float((n == 1).sum() / n.sum()) if n.sum() else float("nan")

    @property
    def true_fact_monofact_rate(self) -> float:
        """The monofact rate of the true-fact mentions alone (round 2, claim C21).

        Entities whose true answer is written exactly once in training (``count_truth ==
        1``), divided by the number of true-answer mentions: the misinformation mentions
        count in neither.  An entity whose fact is unknown counts like any other - its
        true answer is ``unknown``, and a model that has not seen it cannot know that.
        Unlike :attr:`monofact_rate`, the many repetitions of a wrong value neither
        inflate the denominator nor hide a misinformation entity whose truth was
        mentioned once.
        """
        truth = self.entities["count_truth"].to_numpy()
        return float((truth == 1).sum() / truth.sum()) if truth.sum() else float("nan")

    @property
    def missing_mass(self) -> float:
        """The true popularity mass of the entities never mentioned in training."""
        return float(self.entities["popularity"].to_numpy()[self.unseen()].sum())

    def summary(self) -> dict:
        """A few numbers that describe the world."""
        n = self.entities["n"].to_numpy()
        return {
            "entities": self.n_entities,
            "mentions": self.n_mentions,
            "seen": int((n > 0).sum()),
            "unseen": int((n == 0).sum()),
            "seen_once": int((n == 1).sum()),
            "seen_5_or_more": int((n >= 5).sum()),
            "unknown_facts": int(self.entities["is_unknown"].sum()),
            "misinformation": int(self.entities["misinformation"].sum()),
            "monofact_rate": self.monofact_rate,
            "missing_mass": self.missing_mass,
        }

    def prompts(self, index=None) -> torch.Tensor:
        """Questions ``[BOS, part tokens...]`` ``(m, 1 + name_length)`` for the given
        entities (all by default)."""
        names = (
            self.names
            if index is None
            else self.names[np.asarray(index, dtype=np.int64)]
        )
        bos = np.full((len(names), 1), self.bos)
        return torch.as_tensor(
            np.concatenate([bos, self.part_token(names)], axis=1), dtype=torch.long
        )

    def next_token_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training corpus as distinct prompts and next-token counts.

        Returns ``prompts`` ``(m, 1 + name_length)`` for the ``m`` entities seen in
        training and ``counts`` ``(m, vocab_size)`` int64: how often each answer
        followed each question. Where seen entities share a name (``shared_names``),
        their rows are merged into one per name, in the order of each name's first seen
        entity: the same corpus, one row per distinct question.
        """
        seen = self.seen()
        rows = self.entities.iloc[seen]
        counts = np.zeros((seen.size, self.vocab_size), dtype=np.int64)
        at = np.arange(seen.size)
        np.add.at(
            counts, (at, rows["truth"].to_numpy()), rows["count_truth"].to_numpy()
        )
        mis = rows["misinformation"].to_numpy(dtype=bool)
        np.add.at(
            counts,
            (at[mis], rows["wrong_value"].to_numpy()[mis]),
            rows["count_wrong"].to_numpy()[mis],
        )
        _, first, which = np.unique(
            self.names[seen], axis=0, return_index=True, return_inverse=True
        )
        if first.size < seen.size:  # shared names: one row per distinct question
            order = np.argsort(first)
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            merged = np.zeros((first.size, self.vocab_size), dtype=np.int64)
            np.add.at(merged, rank[which.ravel()], counts)
            return self.prompts(seen[np.sort(first)]), torch.as_tensor(merged)
        return self.prompts(seen), torch.as_tensor(counts)

    def sample_queries(self, n: int, seed: int) -> np.ndarray:
        """``n`` fresh entity indices drawn with replacement from the mention
        distribution."""
        n = check_int("n", n)
        seed = check_int("seed", seed, minimum=0)
        p = self.entities["popularity"].to_numpy(dtype=float)
        return np.random.default_rng(seed).choice(
            self.n_entities, size=n, p=p / p.sum()
        )


def _distinct_names(
    rng: np.random.Generator, n_entities: int, n_name_parts: int, name_length: int
) -> np.ndarray:
    """``n_entities`` distinct tuples of ``name_length`` part ids, uniformly at
    random."""
    n_names = n_name_parts**name_length  # a Python int: no overflow
    if n_names <= 10**7:
        codes = rng.choice(n_names, size=n_entities, replace=False)
        digits = n_name_parts ** np.arange(name_length - 1, -1, -1, dtype=np.int64)
        return (codes[:, None] // digits) % n_name_parts
    names = np.empty((0, name_length), dtype=np.int64)
    while len(names) < n_entities:  # a vast name space: collisions are rare
        draw = rng.integers(0, n_name_parts, size=(n_entities, name_length))
        names = np.concatenate([names, draw])
        _, first = np.unique(names, axis=0, return_index=True)
        names = names[np.sort(first)]
    return names[:n_entities]


def make_fact_world(
    *,
    n_entities: int,
    n_name_parts: int,
    name_length: int,
    n_values: int,
    n_mentions: int,
    zipf_exponent: float = 1.1,
    unknown_share: float = 0.0,
    n_misinformation: int = 0,
    misinformation_repeats: int = 0,
    shared_names: bool = False,
    seed: int,
) -> FactWorld:
    """Sample a world of entities and facts, and its training corpus.

    Names are distinct tuples of part ids, drawn uniformly without replacement from the
    ``n_name_parts ** name_length`` possible names; with ``shared_names=True`` each
    entity's name is drawn uniformly *with* replacement instead, so that entities share
    names (and the name space may be smaller than the number of entities).  Exactly
    ``round(unknown_share * n_entities)`` entities, chosen at random, have an unknown
    fact; every other entity's value is uniform over ``n_values``.  Popularity is Zipf
    with ``zipf_exponent`` over a random ranking of the entities, and ``n_mentions``
    mentions are drawn from it (a multinomial); each writes the entity's true answer.
    Then ``n_misinformation`` entities, chosen at random among those with a concrete
    value (seen in training or not), get ``misinformation_repeats`` extra mentions of
    one wrong value, uniform over the other values.
    """
    n_entities = check_int("n_entities", n_entities)
    n_name_parts = check_int("n_name_parts", n_name_parts)
    name_length = check_int("name_length", name_length)
    n_values = check_int("n_values", n_values, minimum=2)
    n_mentions = check_int("n_mentions", n_mentions)
    zipf_exponent = check_positive("zipf_exponent", zipf_exponent)
    if isinstance(unknown_share, bool) or not isinstance(
        unknown_share, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"unknown_share must be a number, got {type(unknown_share).__name__}"
        )
    if not 0 <= unknown_share < 1:  # also rejects NaN
        raise ValueError(f"unknown_share must lie in [0, 1), got {unknown_share!r}")
    n_misinformation = check_int("n_misinformation", n_misinformation, minimum=0)
    misinformation_repeats = check_int(
        "misinformation_repeats", misinformation_repeats, minimum=0
    )
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(shared_names, bool):
        raise TypeError(
            f"shared_names must be a bool, got {type(shared_names).__name__}"
        )
    if not shared_names and n_name_parts**name_length < n_entities:
        raise ValueError(
            f"n_entities ({n_entities}) exceeds the n_name_parts ** name_length ="
            f" {n_name_parts}**{name_length} = {n_name_parts**name_length} distinct"
            " names"
        )
    n_unknown = int(round(unknown_share * n_entities))
    if n_misinformation > n_entities - n_unknown:
        raise ValueError(
            f"n_misinformation ({n_misinformation}) exceeds the"
            f" {n_entities - n_unknown} entities with a concrete value"
        )
    if n_misinformation > 0 and misinformation_repeats < 1:
        raise ValueError(
            "misinformation_repeats must be >= 1 when n_misinformation > 0, "
            f"got {misinformation_repeats}"
        )
    rng = np.random.default_rng(seed)

    if shared_names:
        names = rng.integers(0, n_name_parts, size=(n_entities, name_length))
    else:
        names = _distinct_names(rng, n_entities, n_name_parts, name_length)
    # token layout of FactWorld: BOS, parts, values, UNKNOWN
    first_value = 1 + n_name_parts
    unknown_token = first_value + n_values
    is_unknown = np.zeros(n_entities, dtype=bool)
    is_unknown[rng.choice(n_entities, size=n_unknown, replace=False)] = True
    true_value = rng.integers(0, n_values, size=n_entities)
    truth = np.where(is_unknown, unknown_token, first_value + true_value)

    popularity = zipf_probabilities(n_entities, zipf_exponent)[
        rng.permutation(n_entities)
    ]
    count_truth = rng.multinomial(n_mentions, popularity)

    misinformation = np.zeros(n_entities, dtype=bool)
    misinformation[
        rng.choice(np.flatnonzero(~is_unknown), size=n_misinformation, replace=False)
    ] = True
    # a wrong value: shift the true value by 1..n_values-1 places, cyclically
    shift = rng.integers(1, n_values, size=n_entities)
    wrong_value = np.where(
        misinformation, first_value + (true_value + shift) % n_values, -1
    )
    count_wrong = np.where(misinformation, misinformation_repeats, 0)

    entities = pd.DataFrame(names, columns=_part_columns(name_length))
    entities.insert(0, "entity", np.arange(n_entities))
    entities = entities.assign(
        truth=truth.astype(np.int64),
        is_unknown=is_unknown,
        popularity=popularity,
        n=count_truth + count_wrong,
        count_truth=count_truth,
        count_wrong=count_wrong.astype(np.int64),
        misinformation=misinformation,
        wrong_value=wrong_value.astype(np.int64),
    )
    return FactWorld(
        entities=entities,
        n_name_parts=n_name_parts,
        name_length=name_length,
        n_values=n_values,
    )


# --- recipes --------------------------------------------------------------------------

# About half the entities are never mentioned and a quarter are mentioned once: the
# monofact rate is about 0.15, a hallucination floor well above zero for a calibrated
# model.  (With 20k mentions of 2000 entities it would be about 0.02.)

FACT_RECIPES = {
    "quick": Recipe(
        corpus=dict(
            n_entities=2000,
            n_name_parts=16,
            name_length=3,
            n_values=32,
            n_mentions=3500,
            zipf_exponent=0.9,
            unknown_share=0.1,
            n_misinformation=8,
            misinformation_repeats=30,
        ),
        model=dict(d_model=32, n_heads=2, n_layers=2),
        training=dict(steps=600, lr=1e-2, weight_decay=1e-5),
    ),
    "full": Recipe(
        corpus=dict(
            n_entities=10_000,
            n_name_parts=32,
            name_length=3,
            n_values=64,
            n_mentions=17_500,
            zipf_exponent=0.9,
            unknown_share=0.1,
            n_misinformation=32,
            misinformation_repeats=30,
        ),
        model=dict(d_model=128, n_heads=4, n_layers=3),
        training=dict(steps=3000, lr=3e-3, weight_decay=1e-5),
    ),
}


#: Round 2 (claims C21-C24): round 1's worlds with more misinformation entities (the
#: rule asks for at least 20; at quick scale their 720 repeated wrong mentions are why
#: C21 counts monofacts on true-fact mentions only) and, at quick scale, half round 1's
#: training steps so that five seeds fit the chapter's time budget (the network still
#: fits its corpus to within a few thousandths of a nat per mention).  The answer head
#: is then retrained at the Laplace's own prior by
#: :func:`bayes_at_scale.core.answer_posteriors.fit_answer_posterior`. The seed streams
#: (``derive_seed(seed, key)``) of chapter 4's round-2 answers: the fresh queries, the
#: posterior's samples and the split into selection and evaluation halves; chapter 7
#: draws the same ones, so that its answers are chapter 4's.
ANSWER_QUERIES, ANSWER_SAMPLES, ANSWER_HALVES = 21, 22, 23

ROUND2_FACT_RECIPES = {
    "quick": Recipe(
        corpus=dict(FACT_RECIPES["quick"].corpus, n_misinformation=24),
        model=dict(FACT_RECIPES["quick"].model),
        training=dict(FACT_RECIPES["quick"].training, steps=300),
    ),
    "full": Recipe(
        corpus=dict(FACT_RECIPES["full"].corpus, n_misinformation=64),
        model=dict(FACT_RECIPES["full"].model),
        training=dict(FACT_RECIPES["full"].training),
    ),
}


#: Round 2, claim C28: a world of *ambiguous* questions, in which a pretrained model can
#: be calibrated.  In the worlds above, half the entities are never mentioned, and a
#: network that memorises the rest answers questions about them with confidence and no
#: knowledge - no one temperature calibrates it.  Here 2000 entities share 64 names (two
#: parts out of eight, drawn with replacement), every name is mentioned about 1500
#: times, and there is no misinformation: each answer to a name is right as often as its
#: entities' share of the name's mentions, and a network fitted to the corpus knows
#: exactly that and no more.  Popularity is flatter than above (Zipf exponent 0.7, not
#: 0.9) so that a name's most popular value is usually not near-certain: at 0.9 a policy
#: that always gave each name's most rewarded value would sit only 1.0 to 1.2 nats per
#: query from a calibrated model (five quick seeds), too close to C28's 1-nat budget to
#: reach it; at 0.7 it sits 1.4 to 1.6 nats away.  The shared names merge into one
#: training row per name (:meth:`FactWorld.next_token_counts`), so training costs
#: little.  (The other way to a calibrated model - asking the quick world's model only
#: about entities it has read about - gives a calibrated model, temperature-scaled ECE
#: 0.017 and 0.004 on seeds 0 and 1, but one that is already right: with beta lowered to
#: 1e-4 over 600 steps the fine-tuning moved its held-out answers by 0.002 nats, far
#: short of any budget.)
AMBIGUOUS_FACT_RECIPES = {
    "quick": Recipe(
        corpus=dict(
            n_entities=2000,
            n_name_parts=8,
            name_length=2,
            n_values=32,
            n_mentions=100_000,
            zipf_exponent=0.7,
            unknown_share=0.1,
            shared_names=True,
        ),
        model=dict(FACT_RECIPES["quick"].model),
        training=dict(FACT_RECIPES["quick"].training, steps=300),
    ),
    "full": Recipe(
        corpus=dict(
            n_entities=10_000,
            n_name_parts=16,
            name_length=2,
            n_values=64,
            n_mentions=1_000_000,
            zipf_exponent=0.7,
            unknown_share=0.1,
            shared_names=True,
        ),
        model=dict(FACT_RECIPES["full"].model),
        training=dict(FACT_RECIPES["full"].training),
    ),
}


def fact_world(recipe: Recipe, seed: int) -> FactWorld:
    """The fact world of ``recipe`` (e.g. ``FACT_RECIPES["quick"]``), sampled with
    ``seed``."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    return make_fact_world(**recipe.corpus, seed=seed)


def train_fact_model(world: FactWorld, recipe: Recipe, seed: int) -> CausalLM:
    """A causal transformer trained to the MAP on the fact corpus, as ``recipe``
    says."""
    return train_language_model(
        *world.next_token_counts(), world.vocab_size, recipe, seed
    )


# --- metrics of hallucination ---------------------------------------------------------


def _token_ids(x, name: str, vocab_size: int) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= vocab_size:
        raise ValueError(f"{name} must lie in 0..{vocab_size - 1}")
    return arr.astype(np.int64)


def _answers_and_truth(
    answers, world: FactWorld, entities
) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(world, FactWorld):
        raise TypeError(f"world must be a FactWorld, got {type(world).__name__}")
    a = _token_ids(answers, "answers", world.vocab_size)
    e = _token_ids(entities, "entities", world.n_entities)
    if a.shape != e.shape:
        raise ValueError(
            f"answers and entities must have the same shape, got {a.shape} and "
            f"{e.shape}"
        )
    return a, world.truth[e]


def answer_outcome(answers, world: FactWorld, entities) -> np.ndarray:
    """Grade each answer (a token id) to the question about the matching entity.

    * ``"right"``: the answer is the truth - the right value, or the unknown token for
      an entity whose fact is unknown;
    * ``"unknown"``: the unknown token for an entity with a concrete value (an
      abstention, never a hallucination);
    * ``"wrong"``: anything else - a false value (a hallucination; also a concrete value
      for an entity whose fact is unknown) or a token that is no answer at all.
    """
    a, truth = _answers_and_truth(answers, world, entities)
    return np.where(
        a == truth, "right", np.where(a == world.unknown_token, "unknown", "wrong")
    )


def hallucination_rate(answers, world: FactWorld, entities) -> float:
    """Share of the queries answered with a concrete value that is false.

    The unknown token is never a hallucination, and neither is a token that is no answer
    (it asserts no fact; :func:`answer_outcome` still counts it as wrong).
    """
    a, truth = _answers_and_truth(answers, world, entities)
    return float(np.mean(np.isin(a, world.value_tokens) & (a != truth)))


def outcome_grades(outcomes, threshold: float = 0.75) -> np.ndarray:
    """The grade of each outcome under the grading of Kalai et al. (2025) with
    confidence target ``t``: +1 for ``"right"``, 0 for ``"unknown"``, ``-t / (1 - t)``
    for ``"wrong"`` (-3 at t = 0.75).  Per query, so that two policies can be compared
    pairwise."""
    t = check_threshold(threshold, upper_closed=False)
    o = np.asarray(outcomes, dtype=object)
    if o.ndim != 1:
        raise ValueError(f"outcomes must be one-dimensional, got shape {o.shape}")
    if o.size == 0:
        raise ValueError("outcomes is empty")
    bad = set(o.tolist()) - set(OUTCOMES)
    if bad:
        raise ValueError(
            f"outcomes must be one of {OUTCOMES}, got {sorted(map(repr, bad))}"
        )
    return np.select([o == "right", o == "wrong"], [1.0, -t / (1 - t)], 0.0)


def graded_score(outcomes, threshold: float = 0.75) -> float:
    """Mean score under the grading of Kalai et al. (2025) with confidence target ``t``.

    A right answer scores +1, "unknown" 0 and a wrong answer ``-t / (1 - t)`` (-3 at t =
    0.75), so answering has a positive expected score only when the chance of being
    right exceeds t.
    """
    return float(outcome_grades(outcomes, threshold).mean())


def confident_answers(probs, world: FactWorld, threshold: float) -> np.ndarray:
    """The answer-only-if-confident policy: a token id per row of ``probs``.

    ``probs`` ``(n, vocab_size)`` are next-token probabilities after each question.
    They are renormalised over the answer tokens (values and unknown), since a question
    is answered by one of them; the policy answers the most probable answer token if its
    renormalised probability exceeds ``threshold`` and the unknown token otherwise (also
    when the answer tokens have no mass at all).  When the most probable answer is the
    unknown token, the policy answers unknown either way.
    """
    if not isinstance(world, FactWorld):
        raise TypeError(f"world must be a FactWorld, got {type(world).__name__}")
    p = metrics.check_probabilities(probs, "probs")
    if p.ndim != 2 or p.shape[1] != world.vocab_size:
        raise ValueError(
            f"probs must have shape (n, {world.vocab_size}), got {p.shape}"
        )
    t = check_threshold(threshold, upper_closed=True)
    answer = p[:, world.answer_tokens]
    mass = answer.sum(axis=1)
    best = answer.argmax(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(mass > 0, answer[np.arange(len(p)), best] / mass, 0.0)
    return np.where(confidence > t, world.answer_tokens[best], world.unknown_token)


# --- answering queries: a network and its posterior -----------------------------------


def answer_table(
    world: FactWorld,
    model: CausalLM,
    posterior: Posterior,
    entities,
    n_samples: int,
    seed: int,
) -> tuple[pd.DataFrame, dict]:
    """One row per query (entity index, repeats allowed): truth, count, and for MAP and
    LA the answer, its outcome, the top probability and P(unknown); LA's mutual
    information. Also returns the two next-token distributions, ``{"MAP": (q, V), "LA":
    (q, V)}``."""
    entities = np.asarray(entities)
    if entities.ndim != 1 or entities.size == 0:
        raise ValueError(
            "entities must be a non-empty one-dimensional array of indices"
        )
    prompts = world.prompts(entities)
    probs = {
        "MAP": next_token_probs(model, prompts).double().numpy(),
        "LA": posterior.predictive(prompts).double().numpy(),
    }
    samples = posterior.sample(prompts, n_samples, seed=seed).double().numpy()
    samples /= samples.sum(axis=-1, keepdims=True)
    ent = world.entities.iloc[entities]
    table = pd.DataFrame(
        {
            "entity": entities,
            "n": ent["n"].to_numpy(),
            "truth": ent["truth"].to_numpy(),
            "is_unknown": ent["is_unknown"].to_numpy(),
            "misinformation": ent["misinformation"].to_numpy(),
        }
    )
    for name, p in probs.items():
        p = p / p.sum(axis=1, keepdims=True)
        probs[name] = p
        answer = p.argmax(axis=1)
        table[f"answer_{name}"] = answer
        table[f"outcome_{name}"] = answer_outcome(answer, world, entities)
        table[f"confidence_{name}"] = p.max(axis=1)
        table[f"p_unknown_{name}"] = p[:, world.unknown_token]
    table["mi_LA"] = metrics.mutual_information(samples)
    return table, probs


def detection_labels(table: pd.DataFrame, model: str) -> np.ndarray:
    """1 where the model's answer is wrong (a false value, or a value for an unknown
    fact)."""
    return (table[f"outcome_{model}"] == "wrong").to_numpy(int)
