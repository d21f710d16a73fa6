"""The web dashboard: server-rendered pages over the same services as the CLI and the REST API.

``corral.web.mount(app)`` adds its pages, its own static files, the offline API docs and the
third-party assets the set-up installed (never a CDN). See docs/dashboard.md for why the stack
is Jinja2 templates with a little of Corral's own JavaScript.
"""

from corral.web.mount import mount

__all__ = ["mount"]
