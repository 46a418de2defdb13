"""Metric names of the exporters and servers perfstack runs (not produced by perfstack).

Rules and dashboards import these, so an exporter's metric name is written once, like the
contract's. Names as redis_exporter 1.45+, postgres_exporter 0.15+, Prometheus 2.42+/3.x and
Alertmanager 0.25+ expose them.
"""

UP = "up"  # Prometheus: 1 when the last scrape of a target succeeded

# redis_exporter
REDIS_UP = "redis_up"
REDIS_MEMORY_USED = "redis_memory_used_bytes"
REDIS_MEMORY_MAX = "redis_memory_max_bytes"
REDIS_EVICTED_KEYS = "redis_evicted_keys_total"
REDIS_KEYSPACE_HITS = "redis_keyspace_hits_total"
REDIS_KEYSPACE_MISSES = "redis_keyspace_misses_total"
REDIS_COMMANDS = "redis_commands_processed_total"
REDIS_CONNECTED_CLIENTS = "redis_connected_clients"

# Prometheus and Alertmanager about themselves
PROMETHEUS_RULE_FAILURES = "prometheus_rule_evaluation_failures_total"
PROMETHEUS_CONFIG_RELOAD_OK = "prometheus_config_last_reload_successful"
ALERTMANAGER_NOTIFICATIONS = "alertmanager_notifications_total"
ALERTMANAGER_NOTIFICATIONS_FAILED = "alertmanager_notifications_failed_total"

# Prometheus about itself (dashboards)
SCRAPE_DURATION = "scrape_duration_seconds"
PROMETHEUS_HEAD_SERIES = "prometheus_tsdb_head_series"
PROMETHEUS_SAMPLES_APPENDED = "prometheus_tsdb_head_samples_appended_total"

# postgres_exporter (0.15+; pg_stat_statements collector with --collector.stat_statements)
PG_UP = "pg_up"
PG_BACKENDS = "pg_stat_database_numbackends"
PG_STATEMENT_CALLS = "pg_stat_statements_calls_total"
PG_STATEMENT_SECONDS = "pg_stat_statements_seconds_total"
