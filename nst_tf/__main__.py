"""``python -m nst_tf``: see nst_tf.cli."""

import sys

from nst_tf.cli import main

sys.exit(main())
