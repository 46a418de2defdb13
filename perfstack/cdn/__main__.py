"""``python -m perfstack.cdn purge ...``: the purge command without the ``perfstack`` entry point."""

import sys

from .purge import main

USAGE = "usage: python -m perfstack.cdn purge [options]  (see: python -m perfstack.cdn purge --help)"

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0] != "purge":
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(argv[1:]))
