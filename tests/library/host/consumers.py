"""The host's own top-level ``consumers`` module: the gateway must not take this name."""

HOST_MARKER = "host consumers module"
