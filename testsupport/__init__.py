"""What the tests and the benchmarks share, outside ``tests/``: the rig (real sshd gateway and
target on 127.0.0.1, keys, an ssh config of its own) and a real one-node Slurm cluster.

Not part of the installed package; the test run (pytest's ``pythonpath``) and the benchmarks
put the repository root on ``sys.path``.
"""
