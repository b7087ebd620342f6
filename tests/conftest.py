import pathlib
import sys

# Let test modules import their siblings (flow_cases, cases_*).
sys.path.insert(0, str(pathlib.Path(__file__).parent))
