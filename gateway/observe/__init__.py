"""What every room reports through: the audit log and the Prometheus metrics."""
