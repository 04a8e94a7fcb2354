"""The OpenSSH client, driven by argv: argv builders, the ControlMaster, its socket protocol,
reading ``ssh -G`` and editing the user's ssh config file."""
