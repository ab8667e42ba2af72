"""bitlens: look at transformer language models through information theory, in bits."""

from bitlens.errors import BitlensError

__version__ = "0.1.0"
__all__ = ["BitlensError", "__version__"]
