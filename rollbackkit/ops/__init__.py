"""Where the layers meet: deploy, roll back, promote, backfill, and the runbooks that record them."""
