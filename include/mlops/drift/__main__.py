import sys

from mlops.drift.cli import main

sys.exit(main())
