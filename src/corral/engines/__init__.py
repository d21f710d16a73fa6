"""Pure engines: plain data in, plans and findings out. Never import the API, CLI or store."""
