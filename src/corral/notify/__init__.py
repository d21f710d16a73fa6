"""Outgoing notifications (e-mail over SMTP)."""
