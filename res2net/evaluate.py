"""``python -m res2net.evaluate``: the evaluation command (see res2net.evaluation.cli for its flags)."""

import sys

from res2net.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
