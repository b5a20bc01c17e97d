"""``python -m replyguard``: the command line."""

from .cli import main

raise SystemExit(main())
