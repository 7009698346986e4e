"""Not a DAG: a module that is slow to import, standing in for pandas, torch or cv2 in bad_slow_imports.py.

A sleep, not a real heavy library, so the sample breaks the import budget on any machine, however fast.
"""

import time

time.sleep(0.5)
