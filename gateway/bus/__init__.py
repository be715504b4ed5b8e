"""The message bus: the channel layers (in-memory, Redis) and the bus's health."""
