"""What both the handshake and the consumers speak: close codes, group addresses, the publish envelope."""
