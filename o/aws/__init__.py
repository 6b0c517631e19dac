"""The AWS adapters: every boto3 call O makes lives in this package.

Each module implements one of the domain's ports (run launcher, sandbox, key/secret source, alias
router, outcome metrics, database URL) for AWS; the composition root (:mod:`o.runtime`) picks them
when the settings name AWS resources, and the local adapters otherwise.
"""
