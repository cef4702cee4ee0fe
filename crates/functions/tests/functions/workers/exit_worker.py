"""A test worker that exits before it is ready, with a message on stderr."""

import sys

sys.stderr.write("starting...\nsomething went wrong before ready\n")
sys.stderr.flush()
sys.exit(2)
