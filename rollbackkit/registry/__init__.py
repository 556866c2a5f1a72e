"""Versions and assignments on git + DVC: register, resolve, restore, verify, recover, the journal."""
