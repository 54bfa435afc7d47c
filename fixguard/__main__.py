"""``python -m fixguard`` is the ``fixguard`` command."""

import sys

from .cli import main

sys.exit(main())
