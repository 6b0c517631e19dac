#!/usr/bin/env python3
"""CDK entry point (``cdk synth`` / ``cdk deploy``); see infra/README.md."""

import os

# jsii prints a banner on Node 20 on every run; it says nothing about O.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.application import create_app

app, _ = create_app()
app.synth()
