"""HA admission control: policies (one per file), failover simulation, break date."""
