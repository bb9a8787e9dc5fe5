"""`python -m ace_lsp.server` starts the language server on stdio; with arguments, the `ace` CLI."""

import sys

from ace_lsp.server.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["serve"]))
