"""bayes_at_scale - the package behind the executable essay "Does large-scale AI need
Bayesian deep learning?".

It mirrors the essay in four floors, each importing only from the floors below it:

* :mod:`bayes_at_scale.core`        settings and seeds, checks, models, training,
  posteriors, metrics, bandit policies, profiling;
* :mod:`bayes_at_scale.worlds`      the synthetic worlds, the real text and their
  recipes;
* :mod:`bayes_at_scale.experiments` one module per chapter;
* :mod:`bayes_at_scale.book`        claims, verdict records, the ledger, the verdict
  chapter's prose and the figures.

A reader following a claim goes down the floors once: chapter -> experiments -> worlds /
core -> :func:`bayes_at_scale.book.claims.report` -> record -> ledger.
"""

__version__ = "0.2.0"
