"""jupytunnel: reach Jupyter on machines you can only get to over SSH."""

__version__ = "0.1.0"
