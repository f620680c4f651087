"""gencli: the classic deep generative models behind one command line. See gencli.plugin for the contract."""

__version__ = "0.1.0"
