"""Cloud drivers. Each lives in its own module and is imported only when a space uses it."""
