"""Load testing with an SLO gate: profiles, the gate, Locust and JMeter runs and their reports."""
