"""The console's views, one module per feature; the dashboard pages keep their old import path."""

from rivya_dashboard.console.views.pages import (
    forbidden,
    healthz,
    home,
    not_found,
    server_error,
)

__all__ = ["forbidden", "healthz", "home", "not_found", "server_error"]
