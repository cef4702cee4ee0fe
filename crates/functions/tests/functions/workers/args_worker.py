"""A test worker standing in for Python: its ready line describes how it was started (its
arguments, working directory and the TEST_SETTING variable) in the bindings of one function."""

import json
import os
import sys

started = {"argv": sys.argv[1:], "cwd": os.getcwd(), "setting": os.environ.get("TEST_SETTING")}
print(json.dumps({"type": "ready", "functions": [{"name": "started", "bindings": [started]}]}),
      flush=True)
for line in sys.stdin:
    pass
