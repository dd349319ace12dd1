"""Workflows: what a user of the toolkit does, one function per step.

``catalog`` (ingest, scenes, manifests, snapshots, queries), ``labels`` (pre-labels, the
annotation queue, drafts, saves, review), ``targets`` (ideal-exposure targets), ``users``
(accounts, roles, login), ``releases``, ``training``, ``benchmark``, ``assess`` and ``demo``.

A workflow takes a :class:`iea_data.store.Workspace`, does its database work in one unit of
work, and computes with :mod:`iea_data.core`. The command line (``pipelines``) and the app
(``annotator_app``) call these functions and render what they return.
"""
