"""oceanid lab: real Debian hosts (systemd-nspawn, one network namespace each) on one Linux machine.

The lab is the test ground of oceanid.fleet and the embedded default fleet the README's main
command converges. Run it as ``python3 -m lab --help`` from the repository root, as root.
"""
