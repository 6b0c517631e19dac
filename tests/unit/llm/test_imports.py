from __future__ import annotations

import subprocess
import sys


def test_provider_sdks_load_only_when_a_client_needs_them() -> None:
    # Importing the anthropic SDK costs ~1.5 s of Lambda cold start; an OpenAI-only agent must not pay it.
    code = (
        "import sys\n"
        "from o.llm.providers import client_for\n"
        "from o.llm.config import LLMConfig\n"
        "from o.llm.keys import StaticKeySource\n"
        "assert 'anthropic' not in sys.modules and 'openai' not in sys.modules\n"
        "client_for(LLMConfig.from_handle('openai/gpt-4o-mini'), StaticKeySource({'openai': 'k'}))\n"
        "assert 'openai' in sys.modules and 'anthropic' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
