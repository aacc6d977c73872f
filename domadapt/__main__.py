import sys

from domadapt.cli import main

sys.exit(main())
