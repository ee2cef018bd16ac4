"""omniretail: one headless retail platform behind every sales channel."""

__version__ = "0.1.0"
