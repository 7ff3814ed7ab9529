"""``python -m res2net.evaluate``: the evaluation command (see res2net.evaluation.pipeline)."""

import sys

from res2net.evaluation.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
