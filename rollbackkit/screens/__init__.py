"""Terminal screens of the CLI: what an on-call engineer reads at 80 columns (a face, like cli/).

Each module renders one typed result from ``ops`` with rich; none holds logic of its own.
"""
