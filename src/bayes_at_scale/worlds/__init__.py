"""The worlds floor: every synthetic world the networks learn from, the real text, and
the recipes that size them.

* :mod:`~bayes_at_scale.worlds.fragments`   fragment corpora with known completion
  probabilities;
* :mod:`~bayes_at_scale.worlds.text`        Python's English help texts as a character
  corpus;
* :mod:`~bayes_at_scale.worlds.facts`       a world of arbitrary facts, and answering
  its queries;
* :mod:`~bayes_at_scale.worlds.bandits`     contextual bandit environments;
* :mod:`~bayes_at_scale.worlds.preferences` a preference world with a gold reward,
  best-of-n, graders.
"""
