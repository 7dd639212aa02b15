import os
import sys

# benchmarks/_flow_data.py holds the synthetic ground truth the tests share
# with the benchmark; make the repository root importable.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)
