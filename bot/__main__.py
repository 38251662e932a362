"""`python -m bot`: see bot/cli.py."""
import ctypes
import sys

from bot.cli import main

M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads that allocate at the same time heaps of their own (up to 8 per core), and
    dozens of job threads decoding images leave each heap fragmented: about 40 MB more resident memory
    for a plate. The threads mostly wait on Slack and the model, so two heaps are plenty. Set before
    any thread starts; does nothing where the C library is not glibc."""
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass


limit_malloc_arenas()
sys.exit(main())
