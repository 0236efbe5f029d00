import sys

from gexnet.cli import main

sys.exit(main())
