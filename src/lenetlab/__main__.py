"""``python -m lenetlab``: the same as the ``lenet`` command."""

import sys

from lenetlab.cli import main

sys.exit(main())
