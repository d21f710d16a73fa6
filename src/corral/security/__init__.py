"""Secrets at rest and API tokens: nothing sensitive is stored or logged in clear."""
