import sys

from cxsim.cli import main

sys.exit(main())
