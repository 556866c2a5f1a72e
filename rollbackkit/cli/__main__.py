"""``python -m rollbackkit.cli``: the console script."""

from rollbackkit.cli.entry import main

if __name__ == "__main__":
    main()
