// Placeholder; the web UI replaces it.
