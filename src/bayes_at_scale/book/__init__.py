"""The book floor: what turns the experiments' statistics into the essay's verdicts and
prose.

* :mod:`~bayes_at_scale.book.claims`  the pre-registered claims, their rule engine, the
  verdict line a chapter prints and the record it writes (``ESSAY_RECORDS``);
* :mod:`~bayes_at_scale.book.ledger`  reads the records: the ledger of every claim and
  its verdict, as a table and as MyST markdown linking each verdict to its section;
* :mod:`~bayes_at_scale.book.prose`   the verdict chapter's conditional text, as pure
  functions of the claims and their records;
* :mod:`~bayes_at_scale.book.plots`   the seaborn theme and figure helpers.
"""
