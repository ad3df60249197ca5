import sys

from i2sb.cli import main

sys.exit(main())
