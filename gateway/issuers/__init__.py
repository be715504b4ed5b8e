"""Trusted issuers: the login issuer and the issuers file, with their discovery documents and keys."""
