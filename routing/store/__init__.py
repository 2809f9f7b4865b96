"""Where routing's live metrics and price overrides are kept: in memory, or in Redis
shared by every replica. `open_store(url)` picks by the config's `store:` URL."""
