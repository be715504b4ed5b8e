"""Who may see what: the grant store and its change signals, and the publish API."""
