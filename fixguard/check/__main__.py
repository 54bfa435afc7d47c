"""``python -m fixguard.check`` is ``fixguard check``."""

import sys

from .command import main

sys.exit(main())
