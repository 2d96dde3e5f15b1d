"""`python -m tunnel_tui.agent [--home DIR]`: run the agent (what `up` starts)."""

import sys

from tunnel_tui.agent.daemon import main

sys.exit(main())
