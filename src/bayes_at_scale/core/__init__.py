"""The core floor: what every chapter's experiment is built from.

* :mod:`~bayes_at_scale.core.settings`   scale, base seed, threads, dtype;
  ``derive_seed``, the one way seeds are derived; ``seeded_torch`` for module
  initialisation;
* :mod:`~bayes_at_scale.core.checks`     the one set of argument checks;
* :mod:`~bayes_at_scale.core.models`     the causal transformer and the reward networks;
* :mod:`~bayes_at_scale.core.training`   recipes, MAP training, reward-model training;
* :mod:`~bayes_at_scale.core.posteriors` Laplace options, flavours and the next-token
  posterior - the only module that talks to laplace-torch;
* :mod:`~bayes_at_scale.core.reward_posteriors` the reward models' posteriors (chapters
  5 and 6);
* :mod:`~bayes_at_scale.core.policies`   bandit policies (chapter 5);
* :mod:`~bayes_at_scale.core.metrics`    TV, entropy, mutual information, ECE, AUROC,
  bootstrap CIs;
* :mod:`~bayes_at_scale.core.profiling`, :mod:`~bayes_at_scale.core.cost_model`,
  :mod:`~bayes_at_scale.core.measurements`   timers and peak memory, on-paper costs,
  recorded measurements (chapter 7).
"""
