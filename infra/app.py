"""CDK entry point: `.venv/bin/python infra/app.py` (from any directory; honours CDK_OUTDIR) or
`npx aws-cdk@2 <command>` from infra/ (cdk.json). See docs/DEPLOY.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifeguard_infra.main import synth

if __name__ == "__main__":
    synth()
