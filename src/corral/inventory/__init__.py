"""The inventory service: hosts, sync, VM queries, ownership metadata."""
