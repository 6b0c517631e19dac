"""Moving agents between servers: Letta agent files (.af) and O's full bundle."""
