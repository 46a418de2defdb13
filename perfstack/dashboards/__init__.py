"""Dashboards as code: the house style over grafanalib, the build, and the semantic diff.

Content lives in ``dashboards/<name>.dashboard.py`` (each defines ``dashboard``, so grafanalib's
own ``generate-dashboard`` works on it too); ``perfstack dashboards build`` writes
``dashboards/generated/<name>.json`` and ``perfstack dashboards check`` fails on drift.
"""
