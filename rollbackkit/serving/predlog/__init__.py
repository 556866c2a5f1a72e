"""The prediction log: every served prediction, staged until its version is promoted."""
