"""`python -m bench`: the same as bench/run."""

from bench.cli import main

raise SystemExit(main())
