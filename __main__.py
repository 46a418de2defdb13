"""perfstack: the monitoring stack for one environment (`pulumi up -s dev|staging|prod`)."""

import pulumi

from perfstack.program import build

for name, value in build().items():
    pulumi.export(name, value)
