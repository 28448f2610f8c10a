"""Network drivers: bridge, host, null, overlay, remote (one module each)."""
