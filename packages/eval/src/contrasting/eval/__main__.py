"""``python -m contrasting.eval {eval,tasks} ...`` (the same commands as ``contrasting eval`` / ``tasks``)."""

import sys

from contrasting.eval.cli import main

sys.exit(main())
