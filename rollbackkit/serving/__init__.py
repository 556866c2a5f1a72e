"""Blue-green serving: the router, the served environment and its watchdog, the HTTP app, server
and client, and the prediction log (:mod:`rollbackkit.serving.predlog`)."""
