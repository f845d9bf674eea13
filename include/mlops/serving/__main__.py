import sys

from mlops.serving.cli import main

sys.exit(main(sys.argv[1:]))
