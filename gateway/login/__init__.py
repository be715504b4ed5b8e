"""Browser sign-in and the Django session: OIDC backend and views, back-channel logout, refresh."""
