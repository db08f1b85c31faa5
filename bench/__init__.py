"""`make bench`: the production-shaped stack on this machine, driven through its HTTP API.

`python -m bench --help` lists the scenarios; docs/performance.md explains every figure.
"""
