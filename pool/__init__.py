"""Maintainer code that builds the shipped experience pool: the task families and the collection harness.

Not part of the installed package: run from a clone of the repository, e.g. ``python -m pool.collect --help``.
"""
