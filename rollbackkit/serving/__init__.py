"""Blue-green serving: the in-process router, the served environment, the HTTP app."""
