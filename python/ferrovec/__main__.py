import sys

from ferrovec.cli import main

sys.exit(main())
