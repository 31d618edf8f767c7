"""torchrun entry point: ``torchrun --nproc-per-node N -m vosbench_cli.launch --config C.toml ...``.

Takes the same options as ``vosbench train`` (without ``--nproc``); every worker runs the same
command, joins the process group from torchrun's environment, and rank 0 writes the outputs. It lives
in the CLI package (not in ``vosbench.train``) because it parses ``vosbench train``'s options: the
library does not import the CLI.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from vosbench_cli.common import setup_logging
    from vosbench_cli.train import worker_app

    setup_logging()  # INFO on rank 0, warnings once per message on the others (without it: lost)
    worker_app(args=sys.argv[1:] if argv is None else argv, prog_name="vosbench_cli.launch")


if __name__ == "__main__":
    main()
