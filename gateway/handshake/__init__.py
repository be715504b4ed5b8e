"""The websocket handshake: Origin guard, credentials, authentication, first-message auth, tickets, routes."""
