"""Pulumi components: one ComponentResource per module, composed by :mod:`perfstack.program`."""
