"""Running the process: lifespan tasks, bus watchdog, the socket ledger, health checks."""
