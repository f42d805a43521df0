"""``python -m contrasting.data.builtin``: see :func:`contrasting.data.builtin.cli.main`."""

import sys

from contrasting.data.builtin.cli import main

sys.exit(main())
