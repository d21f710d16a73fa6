"""Corral's services: what every interface (CLI, REST API, dashboard, demo) calls.

A service takes plain inputs (a fleet source, parameters), turns the inventory and
metrics into engine inputs, runs the pure engines and hands back typed results.
Interfaces only parse their options, call a service and render the result.

This package imports nothing at load time: ``corral --help`` must not pay for
OR-Tools or pandas. Import the module you need (``corral.services.planning``).
"""
