"""The browser surface for signed-in users: the console page built on the JS client."""
