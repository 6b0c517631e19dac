"""The AWS deployment of O as CDK constructs, one per capability, wired by ``infra.stack``."""
