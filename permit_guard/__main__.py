"""``python -m permit_guard``: the ``permit-guard`` command."""

from permit_guard.cli import main

if __name__ == "__main__":
    main()
