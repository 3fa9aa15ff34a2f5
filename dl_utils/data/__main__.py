"""``python -m dl_utils.data list | fetch NAME... | fetch --all | verify [NAME...]``."""

import sys

from .cli import main

sys.exit(main())
