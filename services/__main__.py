"""`python -m treadle.services`: the same as `treadle serve`."""

from __future__ import annotations

import sys

from treadle.services.server import serve_main

if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
