"""bayes_at_scale - the package behind the executable essay "Does large-scale AI need Bayesian
deep learning?".

Modules, from the foundations up:

* :mod:`~bayes_at_scale.settings`    scale, seeds, threads, dtype;
* :mod:`~bayes_at_scale.models`      a small causal transformer language model;
* :mod:`~bayes_at_scale.metrics`     TV, entropy, mutual information, ECE, AUROC, bootstrap CIs;
* :mod:`~bayes_at_scale.corpora`     synthetic fragment corpora and the real-text loader;
* :mod:`~bayes_at_scale.training`    MAP training with weight decay;
* :mod:`~bayes_at_scale.posteriors`  Laplace posteriors (the only user of laplace-torch);
* :mod:`~bayes_at_scale.claims`      pre-registered claims, verdict lines and the ledger;
* :mod:`~bayes_at_scale.frequencies` chapter 1's experiment;
* :mod:`~bayes_at_scale.plots`       the seaborn theme and figure helpers.
"""

__version__ = "0.1.0"
