"""The experiments floor: one module per chapter, named after the chapter's file.

Each takes a recipe object and a seed and returns tables and statistics; no experiment
imports another (what two chapters share lives in :mod:`bayes_at_scale.worlds` or
:mod:`bayes_at_scale.core`).
"""
