"""Tool secrets at rest: the agents' tool variables (Letta's ``tool_exec_environment_variables`` /
``secrets``) are stored sealed and opened only to hand them to the sandbox for a tool run.

- :mod:`o.tools.secrets.envelope`: the :class:`SecretBox` (AES-256-GCM under a data key) and its port,
  the :class:`KeyWrapper` that makes and unwraps data keys;
- :mod:`o.tools.secrets.keyfile`: the local key wrapper, a key file in the data directory (mode 0600);
- :mod:`o.aws.kms`: the AWS key wrapper, KMS. The composition root picks one.
"""
