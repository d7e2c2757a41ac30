"""Unprompt entry point: the desktop application by default, CLI sub-commands otherwise."""

import sys


def main() -> int:
    from cli.app import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
