"""`switchboard doctor`: a config checked against the real world (DNS, each provider's
credentials, the store), printed as a table of what works."""
