"""HTTP layer: routes, dependencies, middleware and error handlers."""
