"""What a version is: its manifest, schema, model and artifacts, in memory and on disk."""
