"""``python -m contrasting.encoders``: the ``contrasting`` command (``deepspeed --module contrasting.encoders``)."""

import sys

from .cli import main

sys.exit(main())
