import sys

from mlops.spec.cli import main

sys.exit(main(sys.argv[1:]))
