"""The AWS :class:`~o.llm.keys.KeySource`: LLM provider keys from one Secrets Manager secret.

The secret holds a JSON object keyed by the providers' variable names or by provider:
``{"OPENAI_API_KEY": "..."}`` or ``{"openai": "..."}``. It is read through Powertools Parameters,
cached for ``max_age_s`` so a warm Lambda does not call Secrets Manager on every step, yet a
rotated key is picked up within that time.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from o.llm.keys import key_in


class SecretsManagerKeySource:
    def __init__(self, secret_id: str, max_age_s: int = 300) -> None:
        self.secret_id = secret_id
        self.max_age_s = max_age_s

    def api_key(self, provider: str) -> str | None:
        # Powertools treats max_age=0 as "use the default"; zero here means never cache.
        values = parameters.get_secret(
            self.secret_id, transform="json", max_age=self.max_age_s, force_fetch=self.max_age_s == 0
        )
        if not isinstance(values, dict):
            raise ValueError(f"secret {self.secret_id} must hold a JSON object of API keys")
        return key_in(values, provider)
