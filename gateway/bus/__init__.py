"""The channel layer: an in-memory layer whose cost does not grow with open sockets."""
