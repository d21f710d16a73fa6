"""The demo fleet: a seeded, realistic fleet of test-driver hosts with a history."""
