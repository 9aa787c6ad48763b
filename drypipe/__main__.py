import sys

try:
    import click  # noqa: F401
except ImportError:  # the DryPipe uploaded to a remote host: only its runtime is there
    from drypipe.runtime.remote_main import main as remote_main
    sys.exit(remote_main(sys.argv[1:]))

from drypipe.cli.main import main

main()
